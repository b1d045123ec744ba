// ggml's quantized block types, as GGUF files store them: each row of a
// tensor is whole blocks of `block_elems` values in `block_bytes` bytes.
// Dequantization is bit-exact with ggml's reference decoders
// (dequantize_row_* in ggml-quants.c): the same float operations in the same
// order, so a value read here is the value llama.cpp's reference reads.
#pragma once
#include <cstddef>
#include <cstdint>

#include "tensor.h"

namespace neoserve {

inline constexpr int64_t kQK_K = 256;  // elements of a K-quant super-block

struct GgmlBlockType {
  DType dtype;
  uint32_t ggml_type;  // the number GGUF tensor infos carry
  const char* name;    // ggml's name: "Q4_K"
  int64_t block_elems;
  size_t block_bytes;
  // `blocks` whole blocks at `src` (any alignment) into blocks * block_elems floats.
  void (*dequantize)(const uint8_t* src, int64_t blocks, float* dst);
  // Types whose every 32 values are exactly d * int8 (Q8_0, Q4_0, Q5_0), else
  // nullptr: the int8 values and scales, as int8 kernels run them unchanged.
  void (*to_int8)(const uint8_t* src, int64_t blocks, int8_t* q, float* d);
  // 4-bit types (Q4_0, Q4_1, Q4_K), else nullptr: each 32 values as
  // x = d * q - m exactly, q in [0, 15] (one byte each), d and m fp32 per 32,
  // for `n32` groups of 32 (whole blocks of the type).
  void (*to_u4)(const uint8_t* src, int64_t n32, uint8_t* q, float* d, float* m);
};

// nullptr for F32/F16/BF16 and for numbers that are not a block type we read.
const GgmlBlockType* ggml_block_type(DType t);
const GgmlBlockType* ggml_block_type_by_number(uint32_t ggml_type);
// Any ggml type we read (F32, F16, BF16 and the block types) by its GGUF number.
bool dtype_of_ggml(uint32_t ggml_type, DType& out);
// "Q4_0, Q4_1, ...": for error messages.
const char* ggml_block_type_names();

}  // namespace neoserve
