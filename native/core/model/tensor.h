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
};

constexpr int kQ8_0BlockSize = 32;
constexpr size_t kQ8_0ScaleBytes = 2;  // the fp16 scale, before the block's int8 values
constexpr size_t kQ8_0BlockBytes = kQ8_0ScaleBytes + kQ8_0BlockSize;

const char* dtype_name(DType t);
// Bytes of one row of `cols` elements; cols must be a multiple of 32 for Q8_0.
size_t dtype_row_bytes(DType t, int64_t cols);

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
