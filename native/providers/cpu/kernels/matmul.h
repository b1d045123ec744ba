// Matrix kernels of the CPU provider: out[t][n] = sum_k x[t][k] * W[n][k].
//
// Batch invariance: every output element is one accumulation chain over K in a
// fixed order (SIMD-width lanes, blocks in order, one fixed horizontal
// reduction), computed by one thread. The tile shape (rows x tokens), the
// number of tokens and the thread split change only which elements are
// computed together, never how one is computed — so out[t][n] has the same
// bits for T=1 and T=512 and for any thread count.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/model/tensor.h"

namespace neoserve::cpu {

// Elements per int8 block, each with its own scale: our int8 weights, the
// quantized activations and GGUF Q8_0 share it, so their dot products pair up.
inline constexpr int64_t kQuantBlock = kQ8_0BlockSize;

class ThreadPool;

enum class WFormat : uint8_t {
  F32,
  F16,
  BF16,
  I8,     // our load-time quantization: int8 q[rows][kpad], fp32 scale per 32 block
  Q8_0,   // GGUF blocks {fp16 d; int8 q[32]} straight from the file
  I8P16,  // int8 values and fp16 scales interleaved in panels of 16 rows (below): what the AVX-512 int8 kernel runs
  F32P16, // fp32 in panels of 16 rows, [panel][k][16 rows]: what the AVX-512 float kernel runs for fp32 weights
  BF16P16,  // bf16 in panels of 16 rows, [panel][k/2][16 rows][2] (K padded to even): bf16 dot products
  Ggml,     // any other GGUF block type (WMat::dtype) straight from the file: only read row by row at load
  Q4P16,    // 4-bit panels, x = d * q - m (below): Q4_1, Q4_K
  Q4SP16,   // 4-bit panels, x = d * (q - 8), no m: Q4_0
};

// Int8 panels. Rows in groups of kPanelRows (the last zero-padded); within a
// panel, per 32-block, 8 groups of 4 consecutive K for all 16 rows: one
// 512-bit load holds 4 K of 16 rows, so a vpdpbusd with one token's 4 bytes
// broadcast adds into one lane per row (no horizontal sums, every lane useful
// at any token count). Each block's 16 fp16 scales follow its values, so a
// panel is one stream of (32 + 2) x 16 bytes per block, as GGUF Q8_0's bytes.
// The weights' scales are fp16 values (Q8_0's are; our quantizer rounds them).
inline constexpr int64_t kPanelRows = 16;
inline constexpr int64_t kPanelValueBytes = kPanelRows * 32;                      // one block of one panel: values
inline constexpr int64_t kPanelBlockBytes = kPanelValueBytes + kPanelRows * 2;  // ... then its fp16 scales
inline int64_t panels_of(int64_t rows) { return (rows + kPanelRows - 1) / kPanelRows; }

// 4-bit panels: as int8 panels, but per 32-block 4 groups of 64 bytes, each
// holding for all 16 rows 4 bytes whose low nibbles are K 8g..8g+3 and high
// nibbles K 8g+4..8g+7 (unsigned, 0..15): one load and two masks give two
// vpdpbusd operands. Then the block's 16 fp16 scales d and, for Q4P16, its 16
// fp16 mins m. The integer dot of a block is exact; Q4SP16 subtracts 8 * sum(x)
// from it (Q4_0's offset) and Q4P16 subtracts m * x_d * sum(x) after scaling.
inline constexpr int64_t kQ4PanelValueBytes = kPanelRows * 16;
inline int64_t q4_panel_block_bytes(bool mins) { return kQ4PanelValueBytes + kPanelRows * 2 * (mins ? 2 : 1); }

const char* wformat_name(WFormat f);

// A weight matrix W[n][k] (a Linear weight as PyTorch stores it).
struct WMat {
  WFormat format = WFormat::F32;
  int64_t rows = 0;  // N (output features)
  int64_t cols = 0;  // K (input features)
  const uint8_t* data = nullptr;  // F32/F16/BF16: rows x cols; I8: rows x kpad int8; Q8_0: rows x cols/32 blocks; panels: above
  const float* scales = nullptr;  // I8 only: rows x kpad/32
  DType dtype = DType::F32;       // Ggml only: the block type of each row

  bool integer() const {
    return format == WFormat::I8 || format == WFormat::Q8_0 || format == WFormat::I8P16 || format == WFormat::Q4P16 ||
           format == WFormat::Q4SP16;
  }
  int64_t kpad() const { return (cols + kQuantBlock - 1) / kQuantBlock * kQuantBlock; }  // I8 rows are zero-padded to whole blocks
  size_t row_bytes() const;  // panels: the bytes a row holds inside its panel
};

// Activations quantized for the integer kernels: per token, per 32-block,
// symmetric int8 with an fp32 scale; blocks past `cols` are zero.
struct KernelSet;
struct QActs {
  int64_t tokens = 0, cols = 0, kpad = 0;
  std::vector<int8_t> q;      // tokens x kpad
  std::vector<float> d;       // tokens x kpad/32
  std::vector<int32_t> sums;  // tokens x kpad/32: each block's sum of q (the panel kernel's offset correction)
  void resize(int64_t tokens, int64_t cols);  // grows, never shrinks, its storage
  // Token t's row (after resize), with `k`'s quantizer: every set gives the same bits.
  void quantize_token(const KernelSet& k, int64_t t, const float* x);
  void quantize(const float* x, int64_t tokens, int64_t cols);  // resize + every row, portable code
};

// One instruction set's kernels. Each computes rows [r0, r1) of W for tokens
// [0, T): out[t * ldo + n]. x is T x cols, row-major (stride cols).
struct KernelSet {
  const char* isa;  // "avx512-bf16", "avx512-vnni", "avx2", "portable"
  WFormat int8_layout;  // what weights quantized or repacked to int8 at load become for this set (I8 or I8P16)
  WFormat f32_layout;   // what fp32 weights (stored, or widened at load) become for this set (F32 or F32P16)
  WFormat bf16_layout;  // what bf16 weights become for this set (BF16, run in place, or BF16P16)
  void (*matmul_float)(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo);
  void (*matmul_int8)(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo);
  float (*dot)(const float* a, const float* b, int64_t n);          // fixed-order dot product
  void (*axpy)(float* y, float a, const float* x, int64_t n);       // y += a * x
  // Attention's weighted sum over a run of n cached positions (rows of d
  // floats) for m heads at once (they share v under GQA): for each head h,
  // out[h*d + i] += sum_j p[h*ldp + j] * v[j*d + i], j in order. (Scores go
  // through matmul_float with the K rows as the weight matrix.)
  void (*axpy_rows)(float* out, const float* p, int64_t ldp, int64_t m, const float* v, int64_t n, int64_t d);
  // One token's activations to int8 blocks (QActs layout); every set gives the same bits.
  void (*quantize_row)(const float* x, int64_t cols, int8_t* q, float* d);
  // Softmax's middle: x[i] = exp(x[i] - shift), returning their sum (fixed order).
  float (*exp_shift_sum)(float* x, int64_t n, float shift);
  // SwiGLU: g[i] = silu(g[i]) * u[i].
  void (*silu_mul)(float* g, const float* u, int64_t n);
  // n fp16 values to fp32 (exact): an fp16 KV cache's value rows, before axpy_rows.
  void (*widen_f16)(const uint16_t* h, float* f, int64_t n);
  // n fp32 values to fp16 (round to nearest even, saturated to +-65504, NaN kept): an fp16 KV cache's rows.
  void (*narrow_f16)(const float* f, uint16_t* h, int64_t n);
};

const KernelSet& kernels_portable();
const KernelSet* kernels_avx2();    // nullptr if this CPU lacks AVX2/FMA/F16C
// nullptr if this CPU lacks AVX-512 F/BW/VL/DQ/VNNI (and, when `bf16`,
// AVX512_BF16: then bf16 weights run as bf16 dot products, activations rounded to bf16).
const KernelSet* kernels_avx512(bool bf16);
// What the bf16 dot-product kernel holds per thread (thread_local) for rows of
// `cols` activations: a block of tokens rounded to bf16.
inline constexpr size_t kBf16ActivationBlockBytes = 128 * 1024;
inline size_t bf16_activation_bytes(int64_t cols) {
  const size_t kp = static_cast<size_t>((cols + 31) / 32 * 32);
  return std::max(kBf16ActivationBlockBytes, 12 * kp);  // at least one tile of 6 tokens
}
// The widest set this CPU runs; NEOSERVE_CPU_ISA=avx512-vnni|avx2|portable narrows it.
const KernelSet& best_kernels();

// One input, several weight matrices (q/k/v, or gate/up): their rows are split
// into tiles that the pool's threads take in turn, so one wake-up serves all.
struct MatmulJob {
  const WMat* w;
  float* out;  // T x w->rows
};
void matmul(ThreadPool& pool, const KernelSet& k, const float* x, const QActs* xq, int64_t T,
            const MatmulJob* jobs, int njobs);

// Load-time conversions (portable; run once).
void quantize_rows_i8(const float* src, int64_t rows, int64_t cols, int8_t* q, float* scales);
// Panels [p0, p1) of an I8 matrix (scales that are fp16 values) into the I8P16
// layout of the whole matrix at `dst`: panels_of(rows) * kpad/32 * kPanelBlockBytes bytes.
void pack_panels(const WMat& i8, int64_t p0, int64_t p1, uint8_t* dst);
// One I8P16 panel straight from n <= 16 rows of GGUF Q8_0 blocks (nb per row,
// row_bytes apart; the rest zero): the same bytes, reordered. False when a
// scale is inf or NaN.
bool pack_q8_0_panel(const uint8_t* rows, size_t row_bytes, int64_t n, int64_t nb, uint8_t* panel);
// The portable int8 kernel on panels: the reference the SIMD one matches bit for bit.
void matmul_panels_portable(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo);
// One 4-bit panel (Q4P16 with mins, else Q4SP16) from n <= 16 rows of kpad
// unsigned 4-bit values (a byte each) with fp32 d and m per 32 (the rest zero);
// d and m are stored as fp16 (round to nearest even).
void pack_q4_panel(const uint8_t* q, const float* d, const float* m, int64_t n, int64_t kpad, bool mins, uint8_t* panel);
// The portable kernel on 4-bit panels: the reference the SIMD one matches bit for bit.
void matmul_q4_panels_portable(const WMat& w, const QActs& x, int64_t r0, int64_t r1, float* out, int64_t ldo);
// One F32P16 panel (cols x 16 floats) from n <= 16 rows of cols floats (the rest zero).
void pack_f32_panel(const float* rows, int64_t n, int64_t cols, float* panel);
// One BF16P16 panel (even(cols) x 16 values) from n <= 16 rows of cols bf16
// values, row_bytes apart at any alignment (the rest zero).
inline int64_t even(int64_t cols) { return (cols + 1) / 2 * 2; }
void pack_bf16_panel(const uint8_t* rows, size_t row_bytes, int64_t n, int64_t cols, uint16_t* panel);
// BF16P16 on any CPU: activations rounded to bf16, each pair's products added
// into an fp32 chain (the AVX512_BF16 kernel's arithmetic up to its rounding).
void matmul_bf16_panels_portable(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo);
// The portable float kernel on F32P16: each output one fma chain over k in order, as the SIMD one.
void matmul_f32_panels_portable(const WMat& w, const float* x, int64_t T, int64_t r0, int64_t r1, float* out, int64_t ldo);
// Row `r` of any format as fp32 (embedding lookup, conversions).
void dequantize_row(const WMat& w, int64_t r, float* dst);

}  // namespace neoserve::cpu
