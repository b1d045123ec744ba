// Copy kernels between the paged KV cache and the engine's dense past/present
// tensors, and the logits row gather. All are memory-bound: one thread moves
// one unit (16, 8, 4 or 2 bytes, the widest that divides a row) per iteration
// of a grid-stride loop, and consecutive threads move consecutive units of a
// row, so reads and writes coalesce.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kv_kernels.h"

namespace neoserve::trt {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

int grid_for(int64_t units) {
  const int64_t blocks = (units + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

template <typename U>
__global__ void gather_past_kernel(KvGeometryArgs g, KvCallArgs c, const uint8_t* __restrict__ cache,
                                   uint8_t* __restrict__ past, size_t past_stride, int64_t units_per_row) {
  const int64_t total = static_cast<int64_t>(g.layers2) * c.batch * g.kv_heads * c.past * units_per_row;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t r = i;
    const int64_t u = r % units_per_row;
    r /= units_per_row;
    const int32_t p = static_cast<int32_t>(r % c.past);
    r /= c.past;
    const int32_t h = static_cast<int32_t>(r % g.kv_heads);
    r /= g.kv_heads;
    const int32_t b = static_cast<int32_t>(r % c.batch);
    const int64_t t = r / c.batch;  // layer * 2 + kind

    U* dst = reinterpret_cast<U*>(past + t * past_stride) + dense_row(b, h, p, g.kv_heads, c.past) * units_per_row + u;
    if (p < c.seqs[b].pos) {
      const int32_t block = block_of(c.tables + static_cast<int64_t>(b) * c.table_stride, p, g.block_size);
      const U* src = reinterpret_cast<const U*>(cache + static_cast<size_t>(block) * g.block_bytes) +
                     block_row(t, h, p, g.kv_heads, g.block_size) * units_per_row + u;
      *dst = *src;
    } else {
      *dst = U{};  // padding: masked out by attention_mask, but must be finite (0 * NaN is NaN)
    }
  }
}

template <typename U>
__global__ void scatter_present_kernel(KvGeometryArgs g, KvCallArgs c, const uint8_t* __restrict__ present,
                                       size_t present_stride, uint8_t* __restrict__ cache, int64_t units_per_row) {
  const int32_t present_len = c.past + c.tokens;
  const int64_t total = static_cast<int64_t>(g.layers2) * c.batch * g.kv_heads * c.tokens * units_per_row;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t r = i;
    const int64_t u = r % units_per_row;
    r /= units_per_row;
    const int32_t j = static_cast<int32_t>(r % c.tokens);
    r /= c.tokens;
    const int32_t h = static_cast<int32_t>(r % g.kv_heads);
    r /= g.kv_heads;
    const int32_t b = static_cast<int32_t>(r % c.batch);
    const int64_t t = r / c.batch;

    const KvSeq s = c.seqs[b];
    if (j >= s.len) continue;  // padding token: nothing to keep
    const int32_t pos = s.pos + j;
    const U* src = reinterpret_cast<const U*>(present + t * present_stride) +
                   dense_row(b, h, c.past + j, g.kv_heads, present_len) * units_per_row + u;
    const int32_t block = block_of(c.tables + static_cast<int64_t>(b) * c.table_stride, pos, g.block_size);
    U* dst = reinterpret_cast<U*>(cache + static_cast<size_t>(block) * g.block_bytes) +
             block_row(t, h, pos, g.kv_heads, g.block_size) * units_per_row + u;
    *dst = *src;
  }
}

__device__ inline float to_float(float x) { return x; }
__device__ inline float to_float(__half x) { return __half2float(x); }

template <typename T>
__global__ void gather_logits_kernel(KvCallArgs c, const T* __restrict__ logits, int32_t vocab, float* __restrict__ rows) {
  const int32_t b = blockIdx.y;
  const KvSeq s = c.seqs[b];
  if (s.out_row < 0) return;
  const T* src = logits + (static_cast<int64_t>(b) * c.tokens + (s.len - 1)) * vocab;
  float* dst = rows + static_cast<int64_t>(s.out_row) * vocab;
  for (int32_t v = blockIdx.x * blockDim.x + threadIdx.x; v < vocab; v += gridDim.x * blockDim.x) dst[v] = to_float(src[v]);
}

// Calls f with a zero-valued unit of the widest type that divides row_bytes.
template <typename F>
cudaError_t with_unit(size_t row_bytes, F&& f) {
  if (row_bytes % 16 == 0) return f(uint4{}, 16);
  if (row_bytes % 8 == 0) return f(uint2{}, 8);
  if (row_bytes % 4 == 0) return f(uint32_t{}, 4);
  if (row_bytes % 2 == 0) return f(uint16_t{}, 2);
  return f(uint8_t{}, 1);
}

}  // namespace

cudaError_t kernels_available() {
  cudaFuncAttributes a{};
  for (const void* f : {reinterpret_cast<const void*>(&gather_past_kernel<uint4>),
                        reinterpret_cast<const void*>(&scatter_present_kernel<uint4>),
                        reinterpret_cast<const void*>(&gather_logits_kernel<float>)})
    if (const cudaError_t e = cudaFuncGetAttributes(&a, f); e != cudaSuccess) return e;
  return cudaSuccess;
}

cudaError_t gather_past(const KvGeometryArgs& g, const KvCallArgs& c, const void* cache, void* past, size_t past_stride,
                        cudaStream_t stream) {
  if (c.batch <= 0 || c.past <= 0 || g.layers2 <= 0 || g.kv_heads <= 0 || g.row_bytes == 0) return cudaSuccess;
  return with_unit(g.row_bytes, [&](auto unit, size_t unit_bytes) {
    using U = decltype(unit);
    const int64_t upr = static_cast<int64_t>(g.row_bytes / unit_bytes);
    const int64_t total = static_cast<int64_t>(g.layers2) * c.batch * g.kv_heads * c.past * upr;
    gather_past_kernel<U><<<grid_for(total), kThreads, 0, stream>>>(g, c, static_cast<const uint8_t*>(cache),
                                                                  static_cast<uint8_t*>(past), past_stride, upr);
    return cudaGetLastError();
  });
}

cudaError_t scatter_present(const KvGeometryArgs& g, const KvCallArgs& c, const void* present, size_t present_stride,
                            void* cache, cudaStream_t stream) {
  if (c.batch <= 0 || c.tokens <= 0 || g.layers2 <= 0 || g.kv_heads <= 0 || g.row_bytes == 0) return cudaSuccess;
  return with_unit(g.row_bytes, [&](auto unit, size_t unit_bytes) {
    using U = decltype(unit);
    const int64_t upr = static_cast<int64_t>(g.row_bytes / unit_bytes);
    const int64_t total = static_cast<int64_t>(g.layers2) * c.batch * g.kv_heads * c.tokens * upr;
    scatter_present_kernel<U><<<grid_for(total), kThreads, 0, stream>>>(
        g, c, static_cast<const uint8_t*>(present), present_stride, static_cast<uint8_t*>(cache), upr);
    return cudaGetLastError();
  });
}

cudaError_t gather_logits(const KvCallArgs& c, const void* logits, bool logits_fp16, int32_t vocab, float* rows,
                          cudaStream_t stream) {
  if (c.batch <= 0 || c.tokens <= 0 || vocab <= 0) return cudaSuccess;
  if (c.batch > 65535) return cudaErrorInvalidValue;  // grid y limit; the provider caps its calls far below
  const int64_t x = (static_cast<int64_t>(vocab) + kThreads - 1) / kThreads;
  const dim3 grid(static_cast<unsigned>(x < 1024 ? x : 1024), static_cast<unsigned>(c.batch));
  if (logits_fp16)
    gather_logits_kernel<__half><<<grid, kThreads, 0, stream>>>(c, static_cast<const __half*>(logits), vocab, rows);
  else
    gather_logits_kernel<float><<<grid, kThreads, 0, stream>>>(c, static_cast<const float*>(logits), vocab, rows);
  return cudaGetLastError();
}

}  // namespace neoserve::trt
