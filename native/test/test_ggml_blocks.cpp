// ggml's block types: the views the int8 and 4-bit kernels run (to_int8,
// to_u4) give exactly the values the decoders give (which test/ggml-quants
// checks against an independent decoder), and the 4-bit panels hold them up
// to the fp16 rounding of their scales.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "core/model/ggml_blocks.h"
#include "core/model/gguf.h"
#include "core/model/half.h"
#include "harness.h"
#include "providers/cpu/kernels/matmul.h"

using namespace neoserve;

namespace {

// Random blocks of `t` with finite scales: every fp16 field set to a modest random value.
std::vector<uint8_t> random_blocks(const GgmlBlockType& t, int64_t blocks, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> bytes(static_cast<size_t>(blocks) * t.block_bytes);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  auto set_half = [&](size_t at) {
    const uint16_t h = f32_to_fp16(scale(rng));
    std::memcpy(bytes.data() + at, &h, 2);
  };
  for (int64_t i = 0; i < blocks; ++i) {
    const size_t b = static_cast<size_t>(i) * t.block_bytes;
    switch (t.dtype) {
      case DType::Q4_1: case DType::Q5_1: case DType::Q4_K: case DType::Q5_K: set_half(b), set_half(b + 2); break;
      case DType::Q2_K: set_half(b + 80), set_half(b + 82); break;
      case DType::Q3_K: set_half(b + 108); break;
      case DType::Q6_K: set_half(b + 208); break;
      default: set_half(b); break;
    }
  }
  return bytes;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

}  // namespace

TEST("ggml_blocks.table_agrees_with_the_container") {
  for (uint32_t n = 0; n < 64; ++n) {
    DType t;
    if (!dtype_of_ggml(n, t)) continue;
    const int64_t elems = dtype_block_elems(t);
    uint64_t bytes = 0;
    CHECK(ggml_tensor_bytes(n, {static_cast<uint64_t>(elems * 3), 2}, bytes));
    CHECK_EQ(bytes, 6 * dtype_row_bytes(t, elems));
    if (elems > 1) CHECK(!ggml_tensor_bytes(n, {static_cast<uint64_t>(elems + 1)}, bytes));  // not whole blocks
  }
  DType t;
  CHECK(!dtype_of_ggml(20, t));  // IQ4_NL: not read
}

TEST("ggml_blocks.int8_and_4bit_views_give_the_decoders_values") {
  for (const DType dt : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q8_0, DType::Q4_K}) {
    const GgmlBlockType& t = *ggml_block_type(dt);
    const int64_t blocks = 40, n = blocks * t.block_elems, n32 = n / 32;
    const std::vector<uint8_t> bytes = random_blocks(t, blocks, static_cast<uint32_t>(t.ggml_type));
    std::vector<float> want(n);
    t.dequantize(bytes.data(), blocks, want.data());
    if (t.to_int8) {
      std::vector<int8_t> q(n);
      std::vector<float> d(n32);
      t.to_int8(bytes.data(), n32, q.data(), d.data());
      for (int64_t i = 0; i < n; ++i)
        if (!same_bits(static_cast<float>(q[i]) * d[i / 32], want[i])) {
          CHECK_EQ(static_cast<float>(q[i]) * d[i / 32], want[i]);
          return;
        }
    }
    if (t.to_u4) {
      std::vector<uint8_t> q(n);
      std::vector<float> d(n32), m(n32);
      t.to_u4(bytes.data(), n32, q.data(), d.data(), m.data());
      for (int64_t i = 0; i < n; ++i) {
        CHECK(q[i] < 16);
        if (!same_bits(d[i / 32] * static_cast<float>(q[i]) - m[i / 32], want[i])) {
          CHECK_EQ(d[i / 32] * static_cast<float>(q[i]) - m[i / 32], want[i]);
          return;
        }
      }
    }
  }
}

TEST("ggml_blocks.4bit_panels_hold_the_values_with_fp16_scales") {
  using namespace neoserve::cpu;
  for (const DType dt : {DType::Q4_0, DType::Q4_1, DType::Q4_K}) {
    const GgmlBlockType& t = *ggml_block_type(dt);
    const bool mins = dt != DType::Q4_0;
    const int64_t rows = 21, cols = 512, n32 = cols / 32;
    const std::vector<uint8_t> bytes = random_blocks(t, rows * cols / t.block_elems, 5);
    const size_t row_bytes = static_cast<size_t>(cols / t.block_elems) * t.block_bytes;
    std::vector<uint8_t> panels(static_cast<size_t>(panels_of(rows) * n32 * q4_panel_block_bytes(mins)));
    std::vector<uint8_t> q(static_cast<size_t>(kPanelRows * cols));
    std::vector<float> d(static_cast<size_t>(kPanelRows * n32)), m(d.size());
    for (int64_t p = 0; p < panels_of(rows); ++p) {
      const int64_t n = std::min(kPanelRows, rows - p * kPanelRows);
      for (int64_t lane = 0; lane < n; ++lane)
        t.to_u4(bytes.data() + (p * kPanelRows + lane) * row_bytes, n32, q.data() + lane * cols, d.data() + lane * n32,
                m.data() + lane * n32);
      pack_q4_panel(q.data(), d.data(), m.data(), n, cols, mins, panels.data() + p * n32 * q4_panel_block_bytes(mins));
    }
    const WMat w{mins ? WFormat::Q4P16 : WFormat::Q4SP16, rows, cols, panels.data(), nullptr};
    std::vector<float> got(cols), exact(cols);
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(w, r, got.data());
      t.to_u4(bytes.data() + r * row_bytes, n32, q.data(), d.data(), m.data());
      t.dequantize(bytes.data() + r * row_bytes, cols / t.block_elems, exact.data());
      for (int64_t k = 0; k < cols; ++k) {
        // The panels' scales are the fp16 roundings of d and m (exact for Q4_0 and Q4_1).
        const float dh = fp16_to_f32(f32_to_fp16(d[k / 32])), mh = fp16_to_f32(f32_to_fp16(m[k / 32]));
        const float expect = mins ? dh * static_cast<float>(q[k]) - mh : dh * static_cast<float>(q[k] - 8);
        if (!same_bits(got[k], expect)) {
          CHECK_EQ(got[k], expect);
          return;
        }
        if (dt != DType::Q4_K) {  // fp16 scales already: the file's values exactly
          if (!same_bits(got[k], exact[k])) {
            CHECK_EQ(got[k], exact[k]);
            return;
          }
        }
      }
    }
  }
}
