// The whole GGUF path: container, llama metadata, name mapping, shape checks
// and the Q/K un-permute. Accepted tensors must lie inside the buffer. Then
// every tensor the container accepts, of any type we read, is dequantized:
// a truncated block must have been refused, and inf/NaN scales only propagate.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/model/ggml_blocks.h"
#include "core/model/gguf.h"
#include "core/model/model_loader.h"

namespace {

constexpr int64_t kMaxDequantized = 1 << 20;  // elements per input: keeps each run fast

void dequantize_every_tensor(const uint8_t* data, size_t size) {
  const neoserve::GgufFile f = neoserve::parse_gguf(data, size, "fuzz");
  std::vector<float> out;
  int64_t budget = kMaxDequantized;
  volatile float sink = 0;
  for (const neoserve::GgufTensorInfo& info : f.tensors) {
    neoserve::DType t;
    if (!info.data || !neoserve::dtype_of_ggml(info.ggml_type, t)) continue;
    const int64_t rows_bytes = static_cast<int64_t>(info.nbytes);
    const int64_t elems = rows_bytes / static_cast<int64_t>(neoserve::dtype_row_bytes(t, neoserve::dtype_block_elems(t))) *
                          neoserve::dtype_block_elems(t);
    if (elems > budget) break;
    budget -= elems;
    out.resize(static_cast<size_t>(elems));
    neoserve::dtype_to_f32(t, info.data, elems, out.data());
    for (float v : out) sink = sink + v;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto w = neoserve::load_gguf_buffer(data, size, "fuzz");
    volatile uint8_t sink = 0;
    for (const auto& [name, t] : w->tensors)
      if (t.nbytes > 0) sink = sink ^ t.data[0] ^ t.data[t.nbytes - 1];
    (void)neoserve::rope_inv_freq(w->config);
  } catch (const neoserve::Error&) {
  }
  try {
    dequantize_every_tensor(data, size);
  } catch (const neoserve::Error&) {
  }
  return 0;
}
