#include "../error.h"
#include "tensor.h"

namespace neoserve {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::Q8_0: return "Q8_0";
  }
  return "?";
}

size_t dtype_row_bytes(DType t, int64_t cols) {
  if (cols < 0) throw Error(ErrorCode::Internal, "dtype_row_bytes: negative column count");
  const auto n = static_cast<size_t>(cols);
  switch (t) {
    case DType::F32: return n * 4;
    case DType::F16:
    case DType::BF16: return n * 2;
    case DType::Q8_0:
      // Loaders reject such tensors first; reaching here is our bug, not the file's.
      if (n % kQ8_0BlockSize != 0) throw Error(ErrorCode::Internal, "Q8_0 row of " + std::to_string(cols) + " elements is not whole blocks");
      return n / kQ8_0BlockSize * kQ8_0BlockBytes;
  }
  throw Error(ErrorCode::Internal, "dtype_row_bytes: unknown dtype");
}

}  // namespace neoserve
