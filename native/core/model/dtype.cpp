#include "../error.h"
#include <cstring>

#include "ggml_blocks.h"
#include "half.h"
#include "tensor.h"

namespace neoserve {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    default: break;
  }
  const GgmlBlockType* b = ggml_block_type(t);
  return b ? b->name : "?";
}

int64_t dtype_block_elems(DType t) {
  const GgmlBlockType* b = ggml_block_type(t);
  return b ? b->block_elems : 1;
}

size_t dtype_row_bytes(DType t, int64_t cols) {
  if (cols < 0) throw Error(ErrorCode::Internal, "dtype_row_bytes: negative column count");
  const auto n = static_cast<size_t>(cols);
  switch (t) {
    case DType::F32: return n * 4;
    case DType::F16:
    case DType::BF16: return n * 2;
    default: break;
  }
  const GgmlBlockType* b = ggml_block_type(t);
  if (!b) throw Error(ErrorCode::Internal, "dtype_row_bytes: unknown dtype");
  // Loaders reject such tensors first; reaching here is our bug, not the file's.
  if (n % b->block_elems != 0)
    throw Error(ErrorCode::Internal, std::string(b->name) + " row of " + std::to_string(cols) + " elements is not whole blocks");
  return n / b->block_elems * b->block_bytes;
}

void dtype_to_f32(DType t, const uint8_t* src, int64_t n, float* dst) {
  switch (t) {
    case DType::F32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case DType::F16:
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = t == DType::F16 ? fp16_to_f32(h) : bf16_to_f32(h);
      }
      return;
    default: break;
  }
  const GgmlBlockType& b = *ggml_block_type(t);
  b.dequantize(src, n / b.block_elems, dst);
}

}  // namespace neoserve
