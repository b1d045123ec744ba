// A weight tensor as the loaders hand it to providers: a typed view into a
// memory-mapped file (or into storage the ModelWeights owns).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace neoserve {

enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  Q8_0,  // GGUF blocks along the last dimension: { fp16 scale d; int8 q[32] } = 34 bytes; x = d * q
  // The rest of ggml's block types (layouts in ggml_blocks.h): read from GGUF
  // files, converted by providers at load.
  Q4_0,
  Q4_1,
  Q5_0,
  Q5_1,
  Q2_K,
  Q3_K,
  Q4_K,
  Q5_K,
  Q6_K,
};

constexpr int kQ8_0BlockSize = 32;
constexpr size_t kQ8_0ScaleBytes = 2;  // the fp16 scale, before the block's int8 values
constexpr size_t kQ8_0BlockBytes = kQ8_0ScaleBytes + kQ8_0BlockSize;

const char* dtype_name(DType t);
// Elements per block: 1 for F32/F16/BF16, 32 or 256 for ggml's block types.
int64_t dtype_block_elems(DType t);
// Bytes of one row of `cols` elements; cols must be whole blocks.
size_t dtype_row_bytes(DType t, int64_t cols);
// n values (whole blocks) stored as `t` at `src` (any alignment) to fp32,
// exactly (the block types as ggml's reference decoders compute them).
void dtype_to_f32(DType t, const uint8_t* src, int64_t n, float* dst);

struct Tensor {
  std::string name;            // canonical (Hugging Face) name, e.g. "model.layers.0.self_attn.q_proj.weight"
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // outermost first, as PyTorch: a Linear weight is {out_features, in_features}
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t rows() const { return shape.size() >= 2 ? shape[0] : 1; }
  int64_t cols() const { return shape.empty() ? 0 : shape.back(); }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

}  // namespace neoserve
