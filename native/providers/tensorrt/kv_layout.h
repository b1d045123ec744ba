// Where a KV row lives, in the paged cache and in the engine's dense
// past/present tensors: the one definition the CUDA kernels and the host
// tests share. A row is head_dim elements; t = layer * 2 + (0 K | 1 V).
//   block          [layer][K|V][kv_head][position in block][head_dim]
//   past/present   per tensor t: [batch][kv_head][length][head_dim]
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define NEOSERVE_HOST_DEVICE __host__ __device__
#else
#define NEOSERVE_HOST_DEVICE
#endif

namespace neoserve::trt {

// One sequence of an engine call, as the kernels read it.
struct KvSeq {
  int32_t pos;      // position of the chunk's first token = its real past length
  int32_t len;      // real tokens in the chunk (<= the call's padded length S)
  int32_t out_row;  // row of the fp32 logits staging buffer, or -1 (no logits wanted)
  int32_t pad_;     // keeps the struct 16 bytes
};

// Row of position `pos` of tensor t, head h, inside its block.
NEOSERVE_HOST_DEVICE inline int64_t block_row(int64_t t, int32_t h, int32_t pos, int32_t kv_heads, int32_t block_size) {
  return (t * kv_heads + h) * block_size + pos % block_size;
}

// The block holding position `pos` of a sequence, from its block table.
NEOSERVE_HOST_DEVICE inline int32_t block_of(const int32_t* table, int32_t pos, int32_t block_size) {
  return table[pos / block_size];
}

// Row (b, h, p) of one dense tensor of `length` positions.
NEOSERVE_HOST_DEVICE inline int64_t dense_row(int32_t b, int32_t h, int32_t p, int32_t kv_heads, int32_t length) {
  return (static_cast<int64_t>(b) * kv_heads + h) * length + p;
}

}  // namespace neoserve::trt
