// The TensorRT provider's CUDA kernels (providers/tensorrt/kv_kernels.h) on a
// real GPU, against a host reference written from the layouts documented in
// kv_kernels.h (not from kv_layout.h's helpers):
//   block   [layer][K|V][kv_head][position in block][head_dim]; block b of a
//           sequence holds its positions [b * block_size, (b + 1) * block_size);
//   past    tensor t = layer * 2 + kind at past + t * past_stride: [B][kv_head][P][head_dim],
//           zeros for p in [pos_b, P);
//   present tensor t at present + t * present_stride: [B][kv_head][P + S][head_dim];
//           new token j of sequence b (present position P + j) goes to the
//           block row of position pos_b + j, for j < len_b;
//   logits  [B][S][vocab], fp32 or fp16: rows[out_row_b] = logits[b][len_b - 1].
// The copies are bitwise, so KV data is random bytes and comparisons are
// byte-exact; the fp16 logits reference converts with its own half -> float.
//
// The kernels are called exactly as TensorRtProvider does: KvGeometryArgs as
// allocate() fills geom_, KvSeq / block tables as fill_call_inputs() writes
// them, 256-byte aligned tensor strides, a non-default stream.
//
// Without a usable CUDA device (no driver, no GPU, no context) every case
// prints "skipped: <why>" and passes. Run: neoserve_tensorrt_kernel_tests tensorrt_kernels.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness.h"
#include "providers/tensorrt/kv_kernels.h"

using neoserve::trt::KvCallArgs;
using neoserve::trt::KvGeometryArgs;
using neoserve::trt::KvSeq;

namespace {

// ---- the device ---------------------------------------------------------------------------

std::string cuda_text(cudaError_t e) { return std::string(cudaGetErrorString(e)) + " (" + cudaGetErrorName(e) + ")"; }

// Throws, failing the case with CUDA's message.
void cuda(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) throw std::runtime_error(what + ": " + cuda_text(e));
}

// "" when device 0 (of CUDA_VISIBLE_DEVICES) can run work, else why not. Asked once.
const std::string& device_problem() {
  static const std::string problem = []() -> std::string {
    int n = 0;
    if (const cudaError_t e = cudaGetDeviceCount(&n); e != cudaSuccess)
      return "no CUDA device: " + cuda_text(e) +
             (e == cudaErrorInsufficientDriver ? " [no NVIDIA driver (libcuda.so.1), or one older than this CUDA runtime]" : "");
    if (n <= 0) return "no CUDA device: cudaGetDeviceCount reports none";
    if (const cudaError_t e = cudaSetDevice(0); e != cudaSuccess) return "no usable CUDA device: cudaSetDevice(0): " + cuda_text(e);
    if (const cudaError_t e = cudaFree(nullptr); e != cudaSuccess)
      return "no usable CUDA device: cannot create a context on device 0: " + cuda_text(e);
    return "";
  }();
  return problem;
}

void skip(const std::string& why) { std::printf("  skipped: %s\n", why.c_str()); }

// True when the case can run: skips without a device, fails when the
// library has no kernels for it (a GPU older than its architectures).
bool gpu_ready() {
  if (!device_problem().empty()) {
    skip(device_problem());
    return false;
  }
  if (const cudaError_t e = neoserve::trt::kernels_available(); e != cudaSuccess) {
    neoserve::test::fail(__FILE__, __LINE__, "kernels_available(): " + cuda_text(e));
    return false;
  }
  return true;
}

struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit DeviceBuffer(size_t n) : bytes(n) { cuda(cudaMalloc(&ptr, n ? n : 1), "cudaMalloc " + std::to_string(n) + " bytes"); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { cudaFree(ptr); }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr); }
};

// Uploads and fills finish before they return: a pageable cudaMemcpy or a
// cudaMemset may still be in flight when it returns, and the kernels run on a stream.
template <typename T>
void upload(const DeviceBuffer& d, const std::vector<T>& h) {
  if (h.size() * sizeof(T) > d.bytes) throw std::runtime_error("upload larger than its buffer");
  cuda(cudaMemcpy(d.ptr, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  cuda(cudaDeviceSynchronize(), "upload");
}

void fill(const DeviceBuffer& d, uint8_t byte) {
  cuda(cudaMemset(d.ptr, byte, d.bytes), "cudaMemset");
  cuda(cudaDeviceSynchronize(), "cudaMemset");
}

std::vector<uint8_t> download(const DeviceBuffer& d) {
  std::vector<uint8_t> h(d.bytes);
  if (h.empty()) return h;
  cuda(cudaMemcpy(h.data(), d.ptr, d.bytes, cudaMemcpyDeviceToHost), "download");
  return h;
}

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { cuda(cudaStreamCreate(&s), "cudaStreamCreate"); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { cudaStreamDestroy(s); }
  void sync() const { cuda(cudaStreamSynchronize(s), "cudaStreamSynchronize"); }
};

size_t align256(size_t n) { return (n + 255) / 256 * 256; }

std::vector<uint8_t> random_bytes(size_t n, std::mt19937_64& rng) {
  std::vector<uint8_t> v(n);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint64_t x = rng();
    std::memcpy(v.data() + i, &x, 8);
  }
  for (; i < n; ++i) v[i] = static_cast<uint8_t>(rng());
  return v;
}

// Fails the case on the first few differing bytes (described by `where`);
// true when the buffers are identical.
bool same_bytes(const std::vector<uint8_t>& expected, const std::vector<uint8_t>& actual, const std::string& what,
                const std::function<std::string(size_t)>& where) {
  if (expected.size() != actual.size()) {
    neoserve::test::fail(__FILE__, __LINE__, what + ": " + std::to_string(actual.size()) + " bytes, expected " +
                                                 std::to_string(expected.size()));
    return false;
  }
  size_t bad = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i] == actual[i]) continue;
    if (bad < 5) {
      char buf[64];
      std::snprintf(buf, sizeof buf, ": byte 0x%02x, expected 0x%02x", actual[i], expected[i]);
      neoserve::test::fail(__FILE__, __LINE__, what + " at " + where(i) + buf);
    }
    ++bad;
  }
  if (bad > 5) neoserve::test::fail(__FILE__, __LINE__, what + ": " + std::to_string(bad) + " bytes differ in all");
  return bad == 0;
}

// ---- shapes and batches ----------------------------------------------------------------------

// A model's KV geometry. elem: bytes per element (2 fp16 / bf16, 4 fp32; 1
// exercises the kernels' one-byte copy unit, which no KV dtype reaches).
struct Shape {
  const char* name;
  int32_t layers, kv_heads, block_size, head_dim, elem;
  size_t row_bytes() const { return static_cast<size_t>(head_dim) * elem; }
  size_t block_bytes() const { return static_cast<size_t>(layers) * 2 * kv_heads * block_size * row_bytes(); }
  // As TensorRtProvider::allocate() fills geom_.
  KvGeometryArgs geometry() const { return {layers * 2, kv_heads, block_size, row_bytes(), block_bytes()}; }
  std::string label() const {
    return std::string(name) + " (" + std::to_string(layers) + (layers == 1 ? " layer, " : " layers, ") +
           std::to_string(kv_heads) + (kv_heads == 1 ? " kv head, head_dim " : " kv heads, head_dim ") +
           std::to_string(head_dim) + ", " + std::to_string(row_bytes()) + "-byte rows, block " + std::to_string(block_size) + ")";
  }
};

// 16-, 8-, 4-, 2- and 1-byte copy units (the widest that divides a row).
const Shape kShapes[] = {
    {"fp16 head_dim 64", 2, 2, 16, 64, 2},  // 128-byte rows
    {"fp32 head_dim 16", 3, 2, 8, 16, 4},   // 64-byte rows
    {"fp16 head_dim 4", 1, 3, 4, 4, 2},     // 8-byte rows
    {"fp32 head_dim 3", 2, 1, 16, 3, 4},    // 12-byte rows
    {"fp16 head_dim 3", 2, 2, 16, 3, 2},    // 6-byte rows
    {"bytes head_dim 5", 1, 2, 4, 5, 1},    // 5-byte rows
};

struct SeqSpec {
  int32_t pos;      // real past positions
  int32_t len;      // real new tokens
  int32_t out_row;  // logits row or -1
};

// One engine call's sequences and block tables, over a pool of `num_blocks`
// blocks handed out in a shuffled order. Unused table entries (past a
// sequence's blocks, or its extra columns) name `poison`, a block no
// sequence owns: reading or writing it shows up as a mismatch.
struct Batch {
  int32_t P = 0, S = 0;
  std::vector<SeqSpec> spec;
  std::vector<std::vector<int32_t>> blocks;  // per sequence, its block ids in position order
  int32_t num_blocks = 0;
  int32_t poison = -1;
  int32_t table_stride = 0;
  std::vector<int32_t> owner;  // per block id: its sequence, or -1

  std::vector<KvSeq> seqs() const {  // as fill_call_inputs() writes them
    std::vector<KvSeq> v;
    for (const SeqSpec& s : spec) v.push_back({s.pos, s.len, s.out_row, 0});
    return v;
  }
  std::vector<int32_t> tables() const {
    std::vector<int32_t> t(spec.size() * table_stride, poison);
    for (size_t b = 0; b < spec.size(); ++b)
      for (size_t i = 0; i < blocks[b].size(); ++i) t[b * table_stride + i] = blocks[b][i];
    return t;
  }
  int32_t B() const { return static_cast<int32_t>(spec.size()); }
};

// blocks_for[b]: how many blocks sequence b owns (at least enough for pos + len).
Batch make_batch(const std::vector<SeqSpec>& spec, int32_t P, int32_t S, int32_t block_size, std::mt19937_64& rng,
                 int32_t spare_blocks = 3, int32_t extra_columns = 1, std::vector<int32_t> blocks_for = {}) {
  Batch bt;
  bt.P = P;
  bt.S = S;
  bt.spec = spec;
  int32_t total = 0, widest = 0;
  for (size_t b = 0; b < spec.size(); ++b) {
    const int32_t needed = (spec[b].pos + spec[b].len + block_size - 1) / block_size;
    if (blocks_for.size() <= b) blocks_for.push_back(needed);
    blocks_for[b] = std::max(blocks_for[b], needed);
    total += blocks_for[b];
    widest = std::max(widest, blocks_for[b]);
  }
  bt.num_blocks = total + spare_blocks + 1;
  std::vector<int32_t> ids(bt.num_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  bt.owner.assign(bt.num_blocks, -1);
  size_t next = 0;
  for (size_t b = 0; b < spec.size(); ++b) {
    bt.blocks.emplace_back();
    for (int32_t i = 0; i < blocks_for[b]; ++i) {
      bt.blocks[b].push_back(ids[next]);
      bt.owner[ids[next]] = static_cast<int32_t>(b);
      ++next;
    }
  }
  bt.poison = ids.back();
  bt.table_stride = widest + extra_columns;
  return bt;
}

// ---- the host reference ----------------------------------------------------------------------

// Byte offset in the cache of the row of (layer, kind, head) for position p of
// a sequence whose blocks are `blocks`: block p / block_size, row
// [layer][kind][head][p % block_size] of it.
size_t cache_offset(const Shape& s, const std::vector<int32_t>& blocks, int32_t layer, int32_t kind, int32_t head, int32_t p) {
  const size_t block = static_cast<size_t>(blocks.at(p / s.block_size));
  size_t row = static_cast<size_t>(layer);
  row = row * 2 + kind;
  row = row * s.kv_heads + head;
  row = row * s.block_size + p % s.block_size;
  return block * s.block_bytes() + row * s.row_bytes();
}

// Byte offset of row [b][head][p] of tensor (layer, kind) of a dense [B][kv_head][length][head_dim] set.
size_t dense_offset(const Shape& s, size_t stride, int32_t layer, int32_t kind, int32_t b, int32_t head, int32_t p,
                    int32_t length) {
  size_t row = static_cast<size_t>(b);
  row = row * s.kv_heads + head;
  row = row * length + p;
  return (static_cast<size_t>(layer) * 2 + kind) * stride + row * s.row_bytes();
}

// `past` (prefilled by the caller) after gather_past.
void reference_gather(const Shape& s, const Batch& bt, const std::vector<uint8_t>& cache, size_t past_stride,
                      std::vector<uint8_t>& past) {
  const size_t rb = s.row_bytes();
  for (int32_t layer = 0; layer < s.layers; ++layer)
    for (int32_t kind = 0; kind < 2; ++kind)
      for (int32_t b = 0; b < bt.B(); ++b)
        for (int32_t h = 0; h < s.kv_heads; ++h)
          for (int32_t p = 0; p < bt.P; ++p) {
            uint8_t* dst = past.data() + dense_offset(s, past_stride, layer, kind, b, h, p, bt.P);
            if (p < bt.spec[b].pos) std::memcpy(dst, cache.data() + cache_offset(s, bt.blocks[b], layer, kind, h, p), rb);
            else std::memset(dst, 0, rb);
          }
}

// `cache` after scatter_present.
void reference_scatter(const Shape& s, const Batch& bt, const std::vector<uint8_t>& present, size_t present_stride,
                       std::vector<uint8_t>& cache) {
  const size_t rb = s.row_bytes();
  for (int32_t layer = 0; layer < s.layers; ++layer)
    for (int32_t kind = 0; kind < 2; ++kind)
      for (int32_t b = 0; b < bt.B(); ++b)
        for (int32_t h = 0; h < s.kv_heads; ++h)
          for (int32_t j = 0; j < bt.spec[b].len; ++j)
            std::memcpy(cache.data() + cache_offset(s, bt.blocks[b], layer, kind, h, bt.spec[b].pos + j),
                        present.data() + dense_offset(s, present_stride, layer, kind, b, h, bt.P + j, bt.P + bt.S), rb);
}

std::string where_dense(const Shape& s, size_t stride, int32_t B, int32_t length, size_t off) {
  const size_t t = off / stride, in = off % stride;
  const size_t tensor_bytes = static_cast<size_t>(B) * s.kv_heads * length * s.row_bytes();
  if (in >= tensor_bytes) return "tensor " + std::to_string(t) + " + " + std::to_string(in) + " (past its end)";
  const size_t row = in / s.row_bytes();
  return "tensor " + std::to_string(t) + " [b " + std::to_string(row / length / s.kv_heads) + "][head " +
         std::to_string(row / length % s.kv_heads) + "][p " + std::to_string(row % length) + "] byte " +
         std::to_string(in % s.row_bytes());
}

std::string where_cache(const Shape& s, const Batch& bt, size_t off) {
  const size_t block = off / s.block_bytes(), row = off % s.block_bytes() / s.row_bytes();
  const size_t in_block = row % s.block_size, head = row / s.block_size % s.kv_heads, t = row / s.block_size / s.kv_heads;
  std::string who = block == static_cast<size_t>(bt.poison) ? "poison"
                    : bt.owner[block] < 0                   ? "spare"
                                                            : "of sequence " + std::to_string(bt.owner[block]);
  return "block " + std::to_string(block) + " (" + who + ") tensor " + std::to_string(t) + " head " + std::to_string(head) +
         " row " + std::to_string(in_block) + " byte " + std::to_string(off % s.row_bytes());
}

// ---- one gather and one scatter, checked -------------------------------------------------

struct Device {
  DeviceBuffer seqs, tables;
  Device(const Batch& bt) : seqs(bt.spec.size() * sizeof(KvSeq)), tables(bt.spec.size() * bt.table_stride * sizeof(int32_t)) {
    upload(seqs, bt.seqs());
    upload(tables, bt.tables());
  }
  KvCallArgs args(const Batch& bt) const {  // as TensorRtProvider::run_call() builds them
    return {bt.B(), bt.P, bt.S, seqs.as<const KvSeq>(), tables.as<const int32_t>(), bt.table_stride};
  }
};

// gather_past into a past buffer full of 0xFF (stride with a gap after each
// tensor, which must stay 0xFF), against the reference; the cache must not change.
bool check_gather(const Shape& s, const Batch& bt, std::mt19937_64& rng, const std::string& what) {
  const std::vector<uint8_t> cache = random_bytes(static_cast<size_t>(bt.num_blocks) * s.block_bytes(), rng);
  const size_t stride = align256(static_cast<size_t>(bt.B()) * s.kv_heads * bt.P * s.row_bytes()) + 256;
  DeviceBuffer d_cache(cache.size()), d_past(stride * s.layers * 2);
  upload(d_cache, cache);
  fill(d_past, 0xFF);
  const Device dev(bt);
  const Stream stream;
  cuda(neoserve::trt::gather_past(s.geometry(), dev.args(bt), d_cache.ptr, d_past.ptr, stride, stream.s), "gather_past");
  stream.sync();

  std::vector<uint8_t> expected(d_past.bytes, 0xFF);
  reference_gather(s, bt, cache, stride, expected);
  const bool past_ok = same_bytes(expected, download(d_past), what + ": past",
                                  [&](size_t off) { return where_dense(s, stride, bt.B(), bt.P, off); });
  const bool cache_ok = same_bytes(cache, download(d_cache), what + ": cache after gather_past",
                                   [&](size_t off) { return where_cache(s, bt, off); });
  return past_ok && cache_ok;
}

// scatter_present from random present tensors into a random cache, against
// the reference over the whole cache (rows it must not write, spare and
// poison blocks included); the present tensors must not change.
bool check_scatter(const Shape& s, const Batch& bt, std::mt19937_64& rng, const std::string& what) {
  std::vector<uint8_t> cache = random_bytes(static_cast<size_t>(bt.num_blocks) * s.block_bytes(), rng);
  const size_t stride = align256(static_cast<size_t>(bt.B()) * s.kv_heads * (bt.P + bt.S) * s.row_bytes()) + 256;
  const std::vector<uint8_t> present = random_bytes(stride * s.layers * 2, rng);
  DeviceBuffer d_cache(cache.size()), d_present(present.size());
  upload(d_cache, cache);
  upload(d_present, present);
  const Device dev(bt);
  const Stream stream;
  cuda(neoserve::trt::scatter_present(s.geometry(), dev.args(bt), d_present.ptr, stride, d_cache.ptr, stream.s),
       "scatter_present");
  stream.sync();

  reference_scatter(s, bt, present, stride, cache);
  const bool cache_ok =
      same_bytes(cache, download(d_cache), what + ": cache", [&](size_t off) { return where_cache(s, bt, off); });
  const bool present_ok = same_bytes(present, download(d_present), what + ": present after scatter_present",
                                     [&](size_t off) { return where_dense(s, stride, bt.B(), bt.P + bt.S, off); });
  return cache_ok && present_ok;
}

void report(bool ok, const std::string& what) { std::printf("  %s %s\n", ok ? "ok  " : "FAIL", what.c_str()); }

// ---- fp16 ---------------------------------------------------------------------------------

float half_to_float(uint16_t h) {
  const uint32_t sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0) v = std::ldexp(static_cast<float>(mant), -24);  // zero, subnormal
  else if (exp == 31) v = mant ? NAN : INFINITY;
  else v = std::ldexp(static_cast<float>(mant | 0x400), static_cast<int>(exp) - 25);
  return sign ? -v : v;
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

}  // namespace

// ---- cases ----------------------------------------------------------------------------------

TEST("tensorrt_kernels.available") {
  if (!device_problem().empty()) return skip(device_problem());
  cudaDeviceProp prop{};
  cuda(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  std::printf("  device 0: %s, sm_%d%d, %.1f GiB; CUDA runtime %d, driver %d\n", prop.name, prop.major, prop.minor,
              static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0), runtime, driver);
  const cudaError_t e = neoserve::trt::kernels_available();
  if (e != cudaSuccess) neoserve::test::fail(__FILE__, __LINE__, "kernels_available(): " + cuda_text(e));
}

// Several sequences of different pasts (none, inside a block, on a block
// boundary, many blocks), P larger than every pos: rows below pos_b come
// from the right block rows, the rest are zeros over the 0xFF prefill.
TEST("tensorrt_kernels.gather_past") {
  if (!gpu_ready()) return;
  std::mt19937_64 rng(101);
  for (const Shape& s : kShapes) {
    const int32_t bs = s.block_size;
    const std::vector<SeqSpec> spec{{3 * bs + 5, 1, 0}, {0, 1, 1}, {2 * bs, 1, 2}, {bs - 1, 1, 3}, {7 * bs + 1, 1, 4}, {1, 1, 5}};
    int32_t max_pos = 0;
    for (const SeqSpec& q : spec) max_pos = std::max(max_pos, q.pos);
    // P beyond every pos (padding for every sequence), then P = the longest past.
    for (const int32_t P : {max_pos + 5, max_pos}) {
      const Batch bt = make_batch(spec, P, 1, bs, rng);
      const std::string what = s.label() + ", B " + std::to_string(bt.B()) + ", P " + std::to_string(P);
      report(check_gather(s, bt, rng, what), "gather_past " + what);
    }
  }
}

// Prefill chunks and decodes of different lengths, padded to S (padding
// tokens must not be stored), crossing block boundaries, some sequences
// owning more blocks than they use: only the rows of pos_b .. pos_b+len_b-1 change.
TEST("tensorrt_kernels.scatter_present") {
  if (!gpu_ready()) return;
  std::mt19937_64 rng(202);
  for (const Shape& s : kShapes) {
    const int32_t bs = s.block_size;
    const std::vector<SeqSpec> spec{{0, 2 * bs + 3, -1}, {bs + 2, 1, 0}, {2 * bs - 1, bs + 2, 1}, {5, 3, -1}, {4 * bs, bs, 2}};
    int32_t max_pos = 0, max_len = 0;
    for (const SeqSpec& q : spec) max_pos = std::max(max_pos, q.pos), max_len = std::max(max_len, q.len);
    for (const int32_t extra : {0, 3}) {
      const Batch bt = make_batch(spec, max_pos + extra, max_len + extra, bs, rng, 4, extra, {0, 4, 0, 2, 0});
      const std::string what = s.label() + ", B " + std::to_string(bt.B()) + ", P " + std::to_string(bt.P) + ", S " +
                               std::to_string(bt.S);
      report(check_scatter(s, bt, rng, what), "scatter_present " + what);
    }
  }
}

// The provider's cycle over several steps: gather the past, an "engine"
// whose present is [the gathered past | new rows], scatter the present.
// Every step's gathered past must be exactly the rows the earlier steps
// produced for the sequence (a check that needs no layout), and the cache
// must equal the reference: blocks no sequence owns, and rows not yet
// written, stay bit-identical to their initial garbage.
TEST("tensorrt_kernels.round_trip") {
  if (!gpu_ready()) return;
  std::mt19937_64 rng(303);
  for (const Shape& s : kShapes) {
    const int32_t bs = s.block_size, L2 = s.layers * 2, H = s.kv_heads;
    const size_t rb = s.row_bytes();
    // Per step, per sequence: new tokens (prefill chunks, then decodes).
    const std::vector<std::vector<int32_t>> steps{
        {2 * bs + 3, 5, bs, 1}, {bs - 3, 1, 2 * bs, 1}, {1, 1, 1, 1}, {1, 3, 1, 1}, {1, 1, 1, 2 * bs + 1}, {1, 1, 1, 1}};
    const int32_t nseq = 4;
    std::vector<int32_t> total(nseq, 0);
    for (const auto& st : steps)
      for (int32_t q = 0; q < nseq; ++q) total[q] += st[q];

    // Blocks for each sequence's whole history, one pool over all steps.
    std::vector<SeqSpec> whole;
    for (int32_t q = 0; q < nseq; ++q) whole.push_back({0, total[q], -1});
    Batch pool = make_batch(whole, 1, 1, bs, rng, 5, 0);
    std::vector<uint8_t> cache = random_bytes(static_cast<size_t>(pool.num_blocks) * s.block_bytes(), rng);
    DeviceBuffer d_cache(cache.size());
    upload(d_cache, cache);
    const Stream stream;

    // history[q][(t * H + h) * total + p]: the row the "engine" produced.
    std::vector<std::vector<std::vector<uint8_t>>> history(nseq);
    for (int32_t q = 0; q < nseq; ++q) history[q].resize(static_cast<size_t>(L2) * H * total[q]);
    std::vector<int32_t> pos(nseq, 0);
    bool ok = true;
    for (size_t step = 0; step < steps.size() && ok; ++step) {
      // This step's call: the sequences in a shuffled order, P padded on odd steps.
      std::vector<int32_t> order(nseq);
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      Batch bt = pool;
      bt.spec.clear();
      bt.blocks.clear();
      int32_t P = 0, S = 0;
      for (int32_t q : order) {
        bt.spec.push_back({pos[q], steps[step][q], -1});
        bt.blocks.push_back(pool.blocks[q]);
        P = std::max(P, pos[q]);
        S = std::max(S, steps[step][q]);
      }
      bt.owner.assign(pool.owner.size(), -1);
      for (int32_t b = 0; b < bt.B(); ++b)
        for (int32_t id : bt.blocks[b]) bt.owner[id] = b;
      bt.P = P + (step % 2 ? 2 : 0);
      bt.S = S;
      bt.table_stride = pool.table_stride + static_cast<int32_t>(step % 2);
      const std::string what = s.label() + ", step " + std::to_string(step) + " P " + std::to_string(bt.P) + " S " +
                               std::to_string(bt.S);
      const Device dev(bt);
      const KvCallArgs args = dev.args(bt);

      const size_t past_stride = align256(static_cast<size_t>(bt.B()) * H * bt.P * rb);
      const size_t present_stride = align256(static_cast<size_t>(bt.B()) * H * (bt.P + bt.S) * rb);
      DeviceBuffer d_past(past_stride * L2), d_present(present_stride * L2);
      fill(d_past, 0xFF);
      cuda(neoserve::trt::gather_past(s.geometry(), args, d_cache.ptr, d_past.ptr, past_stride, stream.s), "gather_past");
      stream.sync();
      const std::vector<uint8_t> past = download(d_past);

      // The gathered past is the history, then zeros.
      size_t bad = 0;
      const std::vector<uint8_t> zeros(rb, 0);
      for (int32_t t = 0; t < L2; ++t)
        for (int32_t b = 0; b < bt.B(); ++b)
          for (int32_t h = 0; h < H; ++h)
            for (int32_t p = 0; p < bt.P; ++p) {
              const int32_t q = order[b];
              const uint8_t* got = past.data() + dense_offset(s, past_stride, t / 2, t % 2, b, h, p, bt.P);
              const uint8_t* want =
                  p < pos[q] ? history[q][(static_cast<size_t>(t) * H + h) * total[q] + p].data() : zeros.data();
              if (std::memcmp(got, want, rb) != 0 && bad++ < 5)
                neoserve::test::fail(__FILE__, __LINE__,
                                     what + ": gathered past of sequence " + std::to_string(q) + " tensor " +
                                         std::to_string(t) + " head " + std::to_string(h) + " p " + std::to_string(p) +
                                         (p < pos[q] ? " differs from the row written for it" : " is not zero"));
            }

      // The engine: present = [past | new rows], new rows random (padding tokens' too).
      std::vector<uint8_t> present = random_bytes(d_present.bytes, rng);
      for (int32_t t = 0; t < L2; ++t)
        for (int32_t b = 0; b < bt.B(); ++b)
          for (int32_t h = 0; h < H; ++h) {
            const int32_t q = order[b];
            for (int32_t p = 0; p < bt.P; ++p)
              std::memcpy(present.data() + dense_offset(s, present_stride, t / 2, t % 2, b, h, p, bt.P + bt.S),
                          past.data() + dense_offset(s, past_stride, t / 2, t % 2, b, h, p, bt.P), rb);
            for (int32_t j = 0; j < bt.spec[b].len; ++j) {
              const uint8_t* row =
                  present.data() + dense_offset(s, present_stride, t / 2, t % 2, b, h, bt.P + j, bt.P + bt.S);
              history[q][(static_cast<size_t>(t) * H + h) * total[q] + pos[q] + j].assign(row, row + rb);
            }
          }
      upload(d_present, present);
      cuda(neoserve::trt::scatter_present(s.geometry(), args, d_present.ptr, present_stride, d_cache.ptr, stream.s),
           "scatter_present");
      stream.sync();
      reference_scatter(s, bt, present, present_stride, cache);
      ok = bad == 0 && same_bytes(cache, download(d_cache), what + ": cache after the step",
                                  [&](size_t off) { return where_cache(s, bt, off); });
      for (int32_t q = 0; q < nseq; ++q) pos[q] += steps[step][q];
    }
    report(ok, "round trip " + s.label() + ", " + std::to_string(steps.size()) + " steps");
  }
}

// Calls big enough that the kernels' grid-stride loops go round (more copy
// units than 65535 blocks of 256 threads), with 2-byte units.
TEST("tensorrt_kernels.large") {
  if (!gpu_ready()) return;
  std::mt19937_64 rng(404);
  const Shape s{"fp16 head_dim 3", 2, 4, 16, 3, 2};
  const std::vector<SeqSpec> spec{{100000, 90000, -1}, {3, 1, -1}, {50000, 88000, -1}, {0, 90000, -1}};
  const Batch bt = make_batch(spec, 100003, 90000, s.block_size, rng);
  const int64_t units = static_cast<int64_t>(s.layers) * 2 * bt.B() * s.kv_heads * s.head_dim;
  CHECK(units * bt.P > 65535LL * 256);
  CHECK(units * bt.S > 65535LL * 256);
  const std::string what = s.label() + ", B 4, P " + std::to_string(bt.P) + ", S " + std::to_string(bt.S);
  report(check_gather(s, bt, rng, what), "gather_past " + what);
  report(check_scatter(s, bt, rng, what), "scatter_present " + what);
}

// Zero-sized calls launch nothing and write nothing.
TEST("tensorrt_kernels.empty") {
  if (!gpu_ready()) return;
  std::mt19937_64 rng(505);
  const Shape& s = kShapes[0];
  Batch bt = make_batch({{0, 1, 0}, {0, 1, -1}}, 0, 1, s.block_size, rng);
  const Device dev(bt);
  DeviceBuffer d_cache(static_cast<size_t>(bt.num_blocks) * s.block_bytes()), d_buf(4096);
  fill(d_cache, 0xAB);
  fill(d_buf, 0xFF);
  const Stream stream;
  KvCallArgs args = dev.args(bt);  // P = 0
  CHECK_EQ(neoserve::trt::gather_past(s.geometry(), args, d_cache.ptr, d_buf.ptr, 256, stream.s), cudaSuccess);
  args.tokens = 0;
  CHECK_EQ(neoserve::trt::scatter_present(s.geometry(), args, d_buf.ptr, 256, d_cache.ptr, stream.s), cudaSuccess);
  CHECK_EQ(neoserve::trt::gather_logits(args, d_buf.ptr, false, 16, d_buf.as<float>(), stream.s), cudaSuccess);
  args = dev.args(bt);
  args.batch = 0;
  args.past = 4;
  CHECK_EQ(neoserve::trt::gather_past(s.geometry(), args, d_cache.ptr, d_buf.ptr, 256, stream.s), cudaSuccess);
  CHECK_EQ(neoserve::trt::scatter_present(s.geometry(), args, d_buf.ptr, 256, d_cache.ptr, stream.s), cudaSuccess);
  stream.sync();
  const std::vector<uint8_t> cache = download(d_cache), buf = download(d_buf);
  CHECK(std::all_of(cache.begin(), cache.end(), [](uint8_t x) { return x == 0xAB; }));
  CHECK(std::all_of(buf.begin(), buf.end(), [](uint8_t x) { return x == 0xFF; }));
}

// fp32 and fp16 logits, sequences of different real lengths padded to S,
// out_row -1 for some and rows in another order than the batch: the rows
// named get logits[b][len_b - 1] exactly (half -> float is exact), the
// others keep their 0xFF prefill. vocab 300007 makes the kernel's
// grid-stride loop (1024 blocks of 256 threads) go round.
TEST("tensorrt_kernels.gather_logits") {
  if (!gpu_ready()) return;
  std::mt19937_64 rng(606);
  struct Call {
    int32_t S;
    std::vector<SeqSpec> spec;
    int32_t rows;
  };
  const Call calls[] = {
      {5, {{0, 5, 3}, {7, 1, -1}, {2, 3, 0}, {9, 4, 4}, {0, 2, -1}, {1, 5, 1}}, 6},  // row 2 and 5 never written
      {1, {{4, 1, 1}, {0, 1, -1}, {9, 1, 0}}, 2},                                   // decode
      {3, {{0, 2, -1}}, 1},                                                          // nothing wanted
  };
  for (const bool fp16 : {false, true})
    for (const int32_t vocab : {1000, 300007})
      for (const Call& call : calls) {
        const int32_t B = static_cast<int32_t>(call.spec.size());
        const size_t n = static_cast<size_t>(B) * call.S * vocab;
        const size_t elem = fp16 ? 2 : 4;
        std::vector<uint8_t> logits(n * elem);
        std::vector<float> as_float(n);
        std::uniform_real_distribution<float> value(-30.0f, 30.0f);
        for (size_t i = 0; i < n; ++i) {
          if (fp16) {
            // Any finite half, subnormals and -0 included; an infinity now and then.
            uint16_t h = static_cast<uint16_t>(rng());
            if (((h >> 10) & 0x1f) == 31) h = i % 7 == 0 ? h & 0xfc00 : h & 0xbfff;
            std::memcpy(logits.data() + 2 * i, &h, 2);
            as_float[i] = half_to_float(h);
          } else {
            as_float[i] = value(rng);
            std::memcpy(logits.data() + 4 * i, &as_float[i], 4);
          }
        }
        Batch bt = make_batch(call.spec, 10, call.S, 16, rng);
        const Device dev(bt);
        DeviceBuffer d_logits(logits.size()), d_rows(static_cast<size_t>(call.rows) * vocab * sizeof(float));
        upload(d_logits, logits);
        fill(d_rows, 0xFF);
        const Stream stream;
        cuda(neoserve::trt::gather_logits(dev.args(bt), d_logits.ptr, fp16, vocab, d_rows.as<float>(), stream.s),
             "gather_logits");
        stream.sync();

        std::vector<uint8_t> expected(d_rows.bytes, 0xFF);
        for (int32_t b = 0; b < B; ++b) {
          const SeqSpec& q = call.spec[b];
          if (q.out_row < 0) continue;
          const float* src = as_float.data() + (static_cast<size_t>(b) * call.S + (q.len - 1)) * vocab;
          std::memcpy(expected.data() + static_cast<size_t>(q.out_row) * vocab * sizeof(float), src, vocab * sizeof(float));
        }
        const std::string what = std::string(fp16 ? "fp16" : "fp32") + " logits, vocab " + std::to_string(vocab) + ", B " +
                                 std::to_string(B) + ", S " + std::to_string(call.S);
        const bool ok = same_bytes(expected, download(d_rows), what + ": rows", [&](size_t off) {
          const size_t i = off / sizeof(float);
          float want;
          std::memcpy(&want, expected.data() + i * sizeof(float), sizeof want);
          char buf[96];
          std::snprintf(buf, sizeof buf, "row %zu [%zu] (expected %a, bits 0x%08x)", i / vocab, i % vocab,
                        static_cast<double>(want), bits(want));
          return std::string(buf);
        });
        report(ok, "gather_logits " + what);
      }
}
