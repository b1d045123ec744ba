// The provider's CUDA kernels, behind plain host functions (no CUDA headers
// beyond the runtime API needed to call them):
//   gather_past     each sequence's paged KV blocks -> the dense past tensors the engine reads;
//   scatter_present the new positions of the engine's present tensors -> the sequences' blocks;
//   gather_logits   each sequence's last real token's logits row -> fp32 rows.
//
// Layouts (row = head_dim elements of the KV dtype, row_bytes bytes):
//   block   [layer][K|V][kv_head][position in block][head_dim], block_bytes each;
//   past    tensor t = layer * 2 + (0 K | 1 V) at past + t * past_stride:   [B][kv_head][P][head_dim];
//   present tensor t at present + t * present_stride:                       [B][kv_head][P + S][head_dim];
//           the engine concatenates [past (P) | new (S)], so the chunk's new
//           token j of sequence b is at present position P + j.
//   logits  [B][S][vocab], fp32 or fp16.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kv_layout.h"

namespace neoserve::trt {

struct KvGeometryArgs {
  int32_t layers2;      // layers * 2 (K and V)
  int32_t kv_heads;
  int32_t block_size;   // positions per block
  size_t row_bytes;     // head_dim * element size
  size_t block_bytes;   // one block, all layers
};

struct KvCallArgs {
  int32_t batch;         // B
  int32_t past;          // P (padded past length)
  int32_t tokens;        // S (padded chunk length)
  const KvSeq* seqs;     // [B], device
  const int32_t* tables; // [B][table_stride] block ids, device
  int32_t table_stride;
};

// cudaSuccess when this library carries code the current device can run
// (cudaErrorNoKernelImageForDevice for a GPU older than its architectures).
cudaError_t kernels_available();

// past[t][b][h][p] = block row of position p of sequence b for p < pos_b; zeros for p in [pos_b, P).
cudaError_t gather_past(const KvGeometryArgs& g, const KvCallArgs& c, const void* cache, void* past, size_t past_stride,
                        cudaStream_t stream);

// block row of position pos_b + j of sequence b = present[t][b][h][P + j], for j < len_b.
cudaError_t scatter_present(const KvGeometryArgs& g, const KvCallArgs& c, const void* present, size_t present_stride,
                            void* cache, cudaStream_t stream);

// rows[out_row_b][v] = float(logits[b][len_b - 1][v]) for each b with out_row_b >= 0.
cudaError_t gather_logits(const KvCallArgs& c, const void* logits, bool logits_fp16, int32_t vocab, float* rows,
                          cudaStream_t stream);

}  // namespace neoserve::trt
