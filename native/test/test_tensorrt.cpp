// The TensorRT provider. On any machine: how it batches a step into engine
// calls and lays out their inputs (call_plan.h, kv_layout.h), run against a
// host model of an engine with the same I/O contract; and its library's C
// entry points. On a GPU machine given an engine (NEOSERVE_TEST_ENGINE_DIR, a
// directory with neoserve.json) and the checkpoint it was built from
// (NEOSERVE_TEST_HF_DIR): its greedy tokens and logits against the CPU
// provider's over one continuous batch. Whatever is missing, a case prints
// "skipped: <why>" and passes.
//
// The library is $NEOSERVE_TENSORRT_PROVIDER (ctest sets it to the built
// one), else neoserve_tensorrt.so beside this binary; the GPU comparison runs
// on $NEOSERVE_TEST_DEVICE ("" = the first GPU) and libnvinfer.so.10 or
// $NEOSERVE_NVINFER_LIBRARY.
#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/model/engine_manifest.h"
#include "harness.h"
#include "providers/registry.h"
#include "providers/tensorrt/call_plan.h"
#include "providers/tensorrt/entry.h"
#include "providers/tensorrt/kv_layout.h"
#include "providers/tensorrt_library.h"

using namespace neoserve;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

void skip(const std::string& why) { std::printf("  skipped: %s\n", why.c_str()); }

std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown dlopen error";
}

struct ProviderLibrary {
  void* handle = nullptr;
  std::string path;
  neoserve_tensorrt_abi_fn abi = nullptr;
  neoserve_tensorrt_create_fn create = nullptr;
};

// The provider library, or (handle == nullptr) why it is not there: a missing
// library fails when ctest named it, and skips when nothing did (a build
// without the provider running every case).
ProviderLibrary open_provider_library(bool& must_exist) {
  ProviderLibrary lib;
  const std::string named = env("NEOSERVE_TENSORRT_PROVIDER");
  must_exist = !named.empty();
  lib.path = must_exist ? named : tensorrt_provider_path();
  lib.handle = dlopen(lib.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib.handle) {
    lib.path += " (" + dl_error() + ")";
    return lib;
  }
  lib.abi = reinterpret_cast<neoserve_tensorrt_abi_fn>(dlsym(lib.handle, "neoserve_tensorrt_abi"));
  lib.create = reinterpret_cast<neoserve_tensorrt_create_fn>(dlsym(lib.handle, "neoserve_tensorrt_create"));
  return lib;
}

// "" when the driver reports a CUDA device, else why not. Asks libcuda.so.1
// directly, so that the tests need neither CUDA headers nor the runtime.
std::string cuda_device_problem() {
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!cuda) return "libcuda.so.1 cannot be loaded, no NVIDIA driver (" + dl_error() + ")";
  using InitFn = int (*)(unsigned);
  using CountFn = int (*)(int*);
  auto init = reinterpret_cast<InitFn>(dlsym(cuda, "cuInit"));
  auto count = reinterpret_cast<CountFn>(dlsym(cuda, "cuDeviceGetCount"));
  if (!init || !count) return "libcuda.so.1 does not export cuInit / cuDeviceGetCount";
  if (const int e = init(0)) return "cuInit failed (CUresult " + std::to_string(e) + ")";
  int n = 0;
  if (const int e = count(&n)) return "cuDeviceGetCount failed (CUresult " + std::to_string(e) + ")";
  if (n <= 0) return "the driver reports no device";
  return "";
}

int32_t argmax(const float* row, int32_t n) { return static_cast<int32_t>(std::max_element(row, row + n) - row); }

// One sequence of the continuous batch: it arrives at step `arrive`, feeds
// its prompt in chunks of `chunk` tokens, then decodes `generate` tokens.
struct Seq {
  std::vector<int32_t> context;  // prompt, then the generated tokens
  int32_t prompt = 0;
  int32_t fed = 0;  // positions whose KV is in the cache
  int32_t arrive = 0;
  int32_t chunk = 0;
  int32_t generated = 0;
  std::vector<int32_t> blocks;
};

}  // namespace

// ---- the call plan against a host model of the engine ---------------------------------

namespace sim {

using neoserve::trt::block_of;
using neoserve::trt::block_row;
using neoserve::trt::Call;
using neoserve::trt::CallInputs;
using neoserve::trt::CallPlan;
using neoserve::trt::CallSeq;
using neoserve::trt::dense_row;
using neoserve::trt::KvSeq;
using neoserve::trt::PlanLimits;

constexpr int kLayers = 2, kHeads = 2, kDim = 4, kVocab = 11;

// A token's key, value and query at a position, per layer and head: fixed
// functions, so that a wrong position, token or KV row shows in the logits.
float key(int l, int h, int d, int64_t token, int64_t pos) {
  return static_cast<float>(std::sin(0.37 * token + 0.11 * pos * (d + 1) + 0.5 * l + 0.3 * h));
}
float value(int l, int h, int d, int64_t token, int64_t pos) {
  return static_cast<float>(std::cos(0.23 * token * (d + 1) + 0.07 * pos + l + 0.2 * h));
}
double query(int l, int h, int d, int64_t token, int64_t pos) { return std::sin(0.19 * token + 0.05 * pos * (d + 2) + 0.7 * l + h); }
double mix(int v, int l, int h, int d) { return std::cos(1.3 * v + 0.9 * l + 0.4 * h + 0.77 * d); }

// Softmax attention of one query over the given K/V rows, into logits.
void attend(const double* q, const std::vector<const float*>& keys, const std::vector<const float*>& values, int l, int h,
            double* logits) {
  if (keys.empty()) return;
  std::vector<double> score(keys.size());
  double top = -1e300;
  for (size_t c = 0; c < keys.size(); ++c) {
    double dot = 0;
    for (int d = 0; d < kDim; ++d) dot += q[d] * keys[c][d];
    score[c] = dot / 2.0;
    top = std::max(top, score[c]);
  }
  double sum = 0;
  for (double& x : score) sum += (x = std::exp(x - top));
  double out[kDim] = {0};
  for (size_t c = 0; c < keys.size(); ++c)
    for (int d = 0; d < kDim; ++d) out[d] += score[c] / sum * values[c][d];
  for (int v = 0; v < kVocab; ++v)
    for (int d = 0; d < kDim; ++d) logits[v] += out[d] * mix(v, l, h, d);
}

// What the sequence's last token's logits must be: attention over its whole
// context, unpaged and unpadded.
std::vector<double> reference(const std::vector<int32_t>& tokens, int32_t end) {
  std::vector<double> logits(kVocab, 0.0);
  std::vector<float> k(static_cast<size_t>(end) * kDim), v(static_cast<size_t>(end) * kDim);
  for (int l = 0; l < kLayers; ++l)
    for (int h = 0; h < kHeads; ++h) {
      std::vector<const float*> keys, values;
      for (int32_t c = 0; c < end; ++c) {
        for (int d = 0; d < kDim; ++d) {
          k[c * kDim + d] = key(l, h, d, tokens[c], c);
          v[c * kDim + d] = value(l, h, d, tokens[c], c);
        }
        keys.push_back(&k[c * kDim]);
        values.push_back(&v[c * kDim]);
      }
      double q[kDim];
      for (int d = 0; d < kDim; ++d) q[d] = query(l, h, d, tokens[end - 1], end - 1);
      attend(q, keys, values, l, h, logits.data());
    }
  return logits;
}

// The engine: Optimum's text-generation-with-past contract as Hugging Face
// models compute it. present = [past (P) | new (S)]; new token j attends to
// the columns c <= P + j whose attention_mask is 1; its K/V and query come
// from its input id and position id.
struct Engine {
  int32_t B = 0, P = 0, S = 0;
  std::vector<int64_t> ids, positions, mask;  // [B][S], [B][S], [B][P + S]
  std::vector<float> past;                    // [t][B][H][P][D]
  std::vector<float> present;                 // [t][B][H][P + S][D]
  std::vector<double> logits;                 // [B][S][V]

  // Its own indexing of [B][H][length][D] tensors, written out independently of kv_layout.h.
  static size_t at(int32_t b, int h, int32_t p, int32_t length, int d, int32_t batch, int t) {
    return ((((static_cast<size_t>(t) * batch + b) * kHeads + h) * length + p) * kDim) + d;
  }

  void run() {
    const int32_t W = P + S;
    present.assign(static_cast<size_t>(2 * kLayers) * B * kHeads * W * kDim, 0.0f);
    logits.assign(static_cast<size_t>(B) * S * kVocab, 0.0);
    for (int t = 0; t < 2 * kLayers; ++t)
      for (int32_t b = 0; b < B; ++b)
        for (int h = 0; h < kHeads; ++h)
          for (int d = 0; d < kDim; ++d) {
            for (int32_t p = 0; p < P; ++p) present[at(b, h, p, W, d, B, t)] = past[at(b, h, p, P, d, B, t)];
            for (int32_t j = 0; j < S; ++j) {
              const int64_t token = ids[b * S + j], pos = positions[b * S + j];
              present[at(b, h, P + j, W, d, B, t)] = t % 2 == 0 ? key(t / 2, h, d, token, pos) : value(t / 2, h, d, token, pos);
            }
          }
    for (int32_t b = 0; b < B; ++b)
      for (int32_t j = 0; j < S; ++j)
        for (int l = 0; l < kLayers; ++l)
          for (int h = 0; h < kHeads; ++h) {
            std::vector<const float*> keys, values;
            for (int32_t c = 0; c < W; ++c)
              if (mask[static_cast<size_t>(b) * W + c] == 1 && c <= P + j) {
                keys.push_back(&present[at(b, h, c, W, 0, B, 2 * l)]);
                values.push_back(&present[at(b, h, c, W, 0, B, 2 * l + 1)]);
              }
            double q[kDim];
            for (int d = 0; d < kDim; ++d) q[d] = query(l, h, d, ids[b * S + j], positions[b * S + j]);
            attend(q, keys, values, l, h, logits.data() + (static_cast<size_t>(b) * S + j) * kVocab);
          }
  }
};

// The provider's step on the host: validate, plan, fill each call's inputs,
// gather the past from the blocks, run, scatter the present, take the logits
// of each sequence's last real token.
struct Provider {
  PlanLimits limits;
  bool ids64 = true, mask64 = true;
  CallPlan plan;
  std::vector<float> cache;
  std::vector<Call> seen;  // every call, for the tests of the plan

  size_t block_floats() const { return static_cast<size_t>(2 * kLayers) * kHeads * limits.block_size * kDim; }

  void step(std::span<const SeqStep> batch, LogitsOut& out) {
    if (cache.empty()) cache.assign(block_floats() * limits.num_blocks, std::nanf(""));
    neoserve::trt::validate_batch(batch, limits);
    plan.build(batch, limits);
    out.rows = plan.rows;
    out.vocab = kVocab;
    out.data.assign(static_cast<size_t>(out.rows) * kVocab, std::nanf(""));
    std::vector<int32_t> staged;
    for (const Call& call : plan.calls) {
      seen.push_back(call);
      const int32_t B = call.count, P = call.past, S = call.tokens, W = P + S;
      // The engine's profile: what setInputShape would refuse.
      CHECK(B >= 1 && B <= limits.batch_cap);
      CHECK(S >= 1 && S <= limits.chunk_cap);
      CHECK(P >= limits.min_past && P <= limits.max_past);
      CHECK(W >= limits.mask_min);
      std::vector<KvSeq> seqs(B);
      std::vector<int32_t> tables(static_cast<size_t>(B) * 64, -1);
      std::vector<int64_t> ids64v(B * S), pos64v(B * S), mask64v(static_cast<size_t>(B) * W);
      std::vector<int32_t> ids32v(B * S), pos32v(B * S), mask32v(static_cast<size_t>(B) * W);
      CallInputs in;
      in.seqs = seqs.data();
      in.tables = tables.data();
      in.ids = ids64 ? static_cast<void*>(ids64v.data()) : ids32v.data();
      in.positions = ids64 ? static_cast<void*>(pos64v.data()) : pos32v.data();
      in.mask = mask64 ? static_cast<void*>(mask64v.data()) : mask32v.data();
      in.ids64 = ids64;
      in.mask64 = mask64;
      const int32_t stride = neoserve::trt::fill_call_inputs(call, plan.seqs.data() + call.first, batch, limits.block_size, in, staged);

      Engine e;
      e.B = B;
      e.P = P;
      e.S = S;
      e.ids = ids64 ? ids64v : std::vector<int64_t>(ids32v.begin(), ids32v.end());
      e.positions = ids64 ? pos64v : std::vector<int64_t>(pos32v.begin(), pos32v.end());
      e.mask = mask64 ? mask64v : std::vector<int64_t>(mask32v.begin(), mask32v.end());
      e.past.assign(static_cast<size_t>(2 * kLayers) * B * kHeads * P * kDim, 0.0f);
      for (int t = 0; t < 2 * kLayers; ++t)  // gather_past
        for (int32_t b = 0; b < B; ++b)
          for (int h = 0; h < kHeads; ++h)
            for (int32_t p = 0; p < P; ++p) {
              float* dst = e.past.data() + (static_cast<size_t>(t) * B * kHeads * P + dense_row(b, h, p, kHeads, P)) * kDim;
              if (p >= seqs[b].pos) continue;  // padding stays 0
              const int32_t block = block_of(tables.data() + static_cast<size_t>(b) * stride, p, limits.block_size);
              std::copy_n(cache.data() + block * block_floats() + block_row(t, h, p, kHeads, limits.block_size) * kDim, kDim, dst);
            }
      e.run();
      for (int t = 0; t < 2 * kLayers; ++t)  // scatter_present
        for (int32_t b = 0; b < B; ++b)
          for (int h = 0; h < kHeads; ++h)
            for (int32_t j = 0; j < seqs[b].len; ++j) {
              const int32_t pos = seqs[b].pos + j;
              const int32_t block = block_of(tables.data() + static_cast<size_t>(b) * stride, pos, limits.block_size);
              std::copy_n(e.present.data() + (static_cast<size_t>(t) * B * kHeads * W + dense_row(b, h, P + j, kHeads, W)) * kDim,
                          kDim, cache.data() + block * block_floats() + block_row(t, h, pos, kHeads, limits.block_size) * kDim);
            }
      for (int32_t b = 0; b < B; ++b)  // gather_logits, then the copy out
        if (seqs[b].out_row >= 0)
          for (int v = 0; v < kVocab; ++v)
            out.data[static_cast<size_t>(staged[seqs[b].out_row]) * kVocab + v] =
                static_cast<float>(e.logits[(static_cast<size_t>(b) * S + seqs[b].len - 1) * kVocab + v]);
    }
  }
};

// A scheduler-like run: sequences arrive over the steps, feed their prompts
// in chunks of `chunk` tokens (longer than the engine's calls allow, to make
// the provider split them), then decode greedily until `end` positions.
struct Script {
  std::vector<int32_t> tokens;
  int32_t prompt, arrive, chunk, end;
  std::vector<int32_t> blocks;
  int32_t fed = 0;
};

void run_script(Provider& provider, std::vector<Script> seqs, const char* label) {
  LogitsOut out;
  int rows = 0;
  double worst = 0;
  for (int32_t step = 0; step < 200; ++step) {
    std::vector<SeqStep> batch;
    std::vector<int> owner;
    bool pending = false;
    for (size_t i = 0; i < seqs.size(); ++i) {
      Script& s = seqs[i];
      if (s.fed >= s.end) continue;
      pending = true;
      if (step < s.arrive) continue;
      SeqStep st;
      st.id = i;
      st.pos = s.fed;
      const int32_t n = s.fed < s.prompt ? std::min(s.chunk, s.prompt - s.fed) : 1;
      st.tokens = std::span<const int32_t>(s.tokens.data() + s.fed, n);
      st.kv_blocks = s.blocks;
      st.want_logits = s.fed + n >= s.prompt;
      batch.push_back(st);
      owner.push_back(static_cast<int>(i));
    }
    if (!pending) break;
    if (batch.empty()) continue;
    provider.step(batch, out);
    int32_t row = 0;
    for (size_t b = 0; b < batch.size(); ++b) {
      Script& s = seqs[owner[b]];
      s.fed += static_cast<int32_t>(batch[b].tokens.size());
      if (!batch[b].want_logits) continue;
      const std::vector<double> want = reference(s.tokens, s.fed);
      const float* got = out.row(row++);
      for (int v = 0; v < kVocab; ++v) worst = std::max(worst, std::fabs(static_cast<double>(got[v]) - want[v]));
      ++rows;
      if (s.fed == static_cast<int32_t>(s.tokens.size())) s.tokens.push_back(argmax(got, kVocab));
    }
  }
  std::printf("  %s: %d logits rows, %zu engine calls, worst |dlogit| %.2e\n", label, rows, provider.seen.size(), worst);
  CHECK(worst < 1e-5);
  for (const Script& s : seqs) CHECK_EQ(s.fed, s.end);
}

std::vector<Script> scripts(const PlanLimits& l, uint64_t seed) {
  // prompt, arrival step, prompt chunk per step, positions to reach (the last at max_context: a decode after max_past)
  // The last one only prefills: 38 tokens, then 7 ending at max_past + chunk_cap, whose pieces must start at 38 and 40.
  const int32_t spec[6][4] = {{3, 0, 3, 20},  {12, 0, 7, 26}, {1, 1, 1, 14},
                              {17, 2, 17, l.max_context}, {8, 4, 8, 30}, {45, 3, 38, 45}};
  std::vector<int32_t> ids(l.num_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  uint64_t state = seed;
  for (int32_t i = l.num_blocks - 1; i > 0; --i) {  // the blocks, shuffled
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    std::swap(ids[i], ids[static_cast<int32_t>((state >> 33) % static_cast<uint64_t>(i + 1))]);
  }
  std::vector<Script> out;
  size_t next_block = 0;
  for (const auto& sp : spec) {
    Script s;
    s.prompt = sp[0];
    s.arrive = sp[1];
    s.chunk = sp[2];
    s.end = sp[3];
    for (int32_t j = 0; j < s.prompt; ++j) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      s.tokens.push_back(static_cast<int32_t>((state >> 33) % kVocab));
    }
    for (int32_t k = 0; k < (s.end + l.block_size - 1) / l.block_size; ++k) s.blocks.push_back(ids[next_block++]);
    out.push_back(std::move(s));
  }
  return out;
}

PlanLimits limits() {
  PlanLimits l;
  l.vocab = kVocab;
  l.max_position_embeddings = 64;
  l.block_size = 4;
  l.num_blocks = 80;
  l.max_past = 40;
  l.batch_cap = 2;
  l.chunk_cap = 5;
  l.max_context = 41;  // min(max_position_embeddings, max_past + 1), as the provider reports it
  return l;
}

}  // namespace sim

TEST("tensorrt.plan_matches_unpaged_reference") {
  sim::Provider p;
  p.limits = sim::limits();
  sim::run_script(p, sim::scripts(p.limits, 1), "empty past allowed, int64 inputs");
  for (const sim::Call& c : p.seen) {
    CHECK(c.count >= 1 && c.count <= p.limits.batch_cap);
    CHECK(c.tokens >= 1 && c.tokens <= p.limits.chunk_cap);
    CHECK(c.past <= p.limits.max_past);
    CHECK(c.count == 1 || c.tokens == 1);  // prefill chunks run alone
  }
}

TEST("tensorrt.plan_pads_past_for_profile_minimums") {
  // An engine whose profile needs a past of at least 3 and a mask of at least
  // 6 positions: calls get masked padding in front, results do not change.
  sim::Provider p;
  p.limits = sim::limits();
  p.limits.min_past = 3;
  p.limits.mask_min = 6;
  p.ids64 = false;
  p.mask64 = false;
  sim::run_script(p, sim::scripts(p.limits, 7), "past >= 3, mask >= 6, int32 inputs");
  for (const sim::Call& c : p.seen) {
    CHECK(c.past >= 3);
    CHECK(c.past + c.tokens >= 6);
    CHECK(c.past <= p.limits.max_past);
  }
}

TEST("tensorrt.plan_splits_and_groups") {
  sim::PlanLimits l = sim::limits();
  const std::vector<int32_t> blocks(16, 0);
  const std::vector<int32_t> prompt(12, 1);
  const int32_t one[1] = {2};
  std::vector<SeqStep> batch(6);
  for (int i = 0; i < 5; ++i) {  // five decodes at different positions
    batch[i].tokens = one;
    batch[i].pos = 3 * i;
    batch[i].kv_blocks = blocks;
  }
  batch[5].tokens = prompt;  // a 12-token chunk after 30 positions: pieces of 2, 5, 5
  batch[5].pos = 30;
  batch[5].kv_blocks = blocks;
  batch[2].want_logits = false;
  sim::CallPlan plan;
  neoserve::trt::validate_batch(batch, l);
  plan.build(batch, l);
  CHECK_EQ(plan.rows, 5);
  CHECK_EQ(plan.calls.size(), size_t{6});  // 3 decode calls (2 + 2 + 1), 3 pieces
  if (plan.calls.size() != 6) return;
  CHECK_EQ(plan.calls[0].count, 2);
  CHECK_EQ(plan.calls[0].past, 12);  // longest past first: positions 12 and 9
  CHECK_EQ(plan.seqs[0].step, 4);
  CHECK_EQ(plan.seqs[1].step, 3);
  CHECK_EQ(plan.calls[2].count, 1);
  CHECK_EQ(plan.calls[2].past, 0);
  CHECK_EQ(plan.seqs[2].step, 2);
  CHECK_EQ(plan.seqs[2].out_row, -1);  // batch[2] wants no logits
  CHECK_EQ(plan.seqs[3].out_row, 1);   // batch[1]: row 1, as in batch order
  const int32_t lens[3] = {2, 5, 5}, starts[3] = {30, 32, 37};
  for (int k = 0; k < 3; ++k) {
    const sim::Call& c = plan.calls[3 + k];
    const sim::CallSeq& cs = plan.seqs[c.first];
    CHECK_EQ(c.tokens, lens[k]);
    CHECK_EQ(c.past, starts[k]);
    CHECK_EQ(cs.pos, starts[k]);
    CHECK_EQ(cs.out_row, k == 2 ? 4 : -1);
  }

  // What the profile cannot run is refused, before anything else.
  SeqStep bad = batch[0];
  bad.pos = 41;  // a past of 41 > max_past 40
  CHECK_THROWS(neoserve::trt::validate_batch(std::span<const SeqStep>(&bad, 1), l), ErrorCode::InvalidRequest, "profile");
  bad = batch[5];
  bad.pos = 34;  // ends at 46 > max_past + chunk_cap
  CHECK_THROWS(neoserve::trt::validate_batch(std::span<const SeqStep>(&bad, 1), l), ErrorCode::InvalidRequest, "profile");
  bad.pos = 60;  // ends at 72 > max_position_embeddings
  CHECK_THROWS(neoserve::trt::validate_batch(std::span<const SeqStep>(&bad, 1), l), ErrorCode::InvalidRequest,
               "exceed the context of 64");
  const int32_t big[1] = {sim::kVocab};
  bad = batch[0];
  bad.tokens = big;
  CHECK_THROWS(neoserve::trt::validate_batch(std::span<const SeqStep>(&bad, 1), l), ErrorCode::InvalidRequest, "vocabulary");
  const std::vector<int32_t> wrong = {0, 80};
  bad = batch[0];
  bad.pos = 5;  // needs blocks 0 and 1
  bad.kv_blocks = wrong;
  CHECK_THROWS(neoserve::trt::validate_batch(std::span<const SeqStep>(&bad, 1), l), ErrorCode::InvalidRequest, "KV block 80");
  bad.kv_blocks = std::span<const int32_t>(wrong.data(), 1);
  CHECK_THROWS(neoserve::trt::validate_batch(std::span<const SeqStep>(&bad, 1), l), ErrorCode::InvalidRequest, "block table has 1");
  bad.tokens = {};
  CHECK_THROWS(neoserve::trt::validate_batch(std::span<const SeqStep>(&bad, 1), l), ErrorCode::InvalidRequest, "no tokens");
}

TEST("tensorrt.entry_points") {
  bool must_exist = false;
  ProviderLibrary lib = open_provider_library(must_exist);
  if (!lib.handle) {
    if (must_exist) neoserve::test::fail(__FILE__, __LINE__, "cannot load " + lib.path);
    else skip("no provider library: " + lib.path);
    return;
  }
  CHECK(lib.abi != nullptr);
  CHECK(lib.create != nullptr);
  if (!lib.abi || !lib.create) return;
  CHECK_EQ(lib.abi(tensorrt_layout_fingerprint()), NEOSERVE_TENSORRT_ABI);
  CHECK_EQ(lib.abi(tensorrt_layout_fingerprint() ^ 1), -1);  // built from other headers: refused

  char message[512] = "unchanged";
  Provider* provider = reinterpret_cast<Provider*>(&message);  // must be reset to null on failure
  CHECK_EQ(lib.create(nullptr, &provider, message, sizeof message), 1 + static_cast<int>(ErrorCode::Internal));
  CHECK(provider == nullptr);
  CHECK(std::string(message).find("no load request") != std::string::npos);

  // A real request on a machine without a usable GPU (or, with one, with a
  // libnvinfer handle that is not TensorRT): ProviderUnavailable, whose
  // message says what is missing, and no exception through the C boundary.
  EngineManifest manifest;
  manifest.dir = "/nonexistent";
  manifest.path = "/nonexistent/neoserve.json";
  manifest.engine_file = "/nonexistent/model.engine";
  manifest.precision = "fp16";
  manifest.config.num_hidden_layers = 1;
  manifest.config.num_attention_heads = 1;
  manifest.config.num_key_value_heads = 1;
  manifest.config.head_dim = 8;
  manifest.config.hidden_size = 8;
  manifest.config.vocab_size = 16;
  TensorRtLoadRequest request;
  request.manifest = &manifest;
  request.nvinfer = dlopen(nullptr, RTLD_NOW);  // this program: no createInferRuntime_INTERNAL in it
  request.device = "";
  provider = nullptr;
  const int code = lib.create(&request, &provider, message, sizeof message);
  CHECK_EQ(code, 1 + static_cast<int>(ErrorCode::ProviderUnavailable));
  CHECK(provider == nullptr);
  CHECK(std::string(message).find("provider unavailable: ") == 0);
  std::printf("  without a GPU or TensorRT: %s\n", message);

  request.device = "GPU-not-a-uuid";
  CHECK_EQ(lib.create(&request, &provider, message, sizeof message), 1 + static_cast<int>(ErrorCode::ProviderUnavailable));
  request.device = "cuda:0";
  CHECK_EQ(lib.create(&request, &provider, message, sizeof message), 1 + static_cast<int>(ErrorCode::InvalidRequest));
  CHECK(std::string(message).find("device must be") != std::string::npos);
  request.device = "MIG-0b7b2c5e-1b5c-5b5a-9b5e-000000000000";
  CHECK_EQ(lib.create(&request, &provider, message, sizeof message), 1 + static_cast<int>(ErrorCode::ProviderUnavailable));
  if (env("CUDA_VISIBLE_DEVICES").find("MIG-0b7b2c5e") == std::string::npos)
    CHECK(std::string(message).find("CUDA_VISIBLE_DEVICES=MIG-0b7b2c5e") != std::string::npos);
  request.device = "";
  request.kv_block_size = 0;
  CHECK_EQ(lib.create(&request, &provider, message, sizeof message), 1 + static_cast<int>(ErrorCode::InvalidRequest));
  CHECK(std::string(message).find("kv_block_size") != std::string::npos);
}

TEST("tensorrt.matches_cpu") {
  const std::string engine_dir = env("NEOSERVE_TEST_ENGINE_DIR");
  const std::string hf_dir = env("NEOSERVE_TEST_HF_DIR");
  if (engine_dir.empty()) return skip("NEOSERVE_TEST_ENGINE_DIR not set");
  if (hf_dir.empty()) return skip("NEOSERVE_TEST_HF_DIR not set");
  if (const std::string problem = cuda_device_problem(); !problem.empty()) return skip("no CUDA device: " + problem);
  const std::string nvinfer_path = env("NEOSERVE_NVINFER_LIBRARY").empty() ? "libnvinfer.so.10" : env("NEOSERVE_NVINFER_LIBRARY");
  void* nvinfer = dlopen(nvinfer_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!nvinfer) return skip("libnvinfer.so.10 not found: " + dl_error());

  bool must_exist = false;
  ProviderLibrary lib = open_provider_library(must_exist);
  if (!lib.handle || !lib.abi || !lib.create) {
    neoserve::test::fail(__FILE__, __LINE__, "cannot use the provider library " + lib.path);
    return;
  }
  CHECK_EQ(lib.abi(tensorrt_layout_fingerprint()), NEOSERVE_TENSORRT_ABI);

  // Both providers, as the registry and the loader build them.
  const EngineManifest manifest = load_engine_manifest(engine_dir);
  using VersionFn = int32_t (*)();
  auto version = reinterpret_cast<VersionFn>(dlsym(nvinfer, "getInferLibVersion"));
  CHECK(version != nullptr);
  if (!version) return;
  check_runtime_version(manifest, TensorRtVersion::from_lib(version()));
  TensorRtLoadRequest request;
  request.manifest = &manifest;
  request.nvinfer = nvinfer;
  request.device = std::getenv("NEOSERVE_TEST_DEVICE") ? std::getenv("NEOSERVE_TEST_DEVICE") : "";
  request.kv_block_size = 16;
  Provider* raw = nullptr;
  char message[2048] = {0};
  const int code = lib.create(&request, &raw, message, sizeof message);
  if (code != 0 || !raw) {
    neoserve::test::fail(__FILE__, __LINE__, "the TensorRT provider did not load (code " + std::to_string(code) + "): " + message);
    return;
  }
  std::unique_ptr<Provider> trt(raw);
  ProviderOptions cpu_options;
  cpu_options.backend = "cpu";
  cpu_options.kv_block_size = 16;
  const LoadedEngine cpu_engine = load_engine(hf_dir, cpu_options);
  Provider& cpu = *cpu_engine.provider;

  const ProviderInfo ti = trt->info(), ci = cpu.info();
  std::printf("  tensorrt: %s, %s, context %d; cpu: %s\n", ti.device.c_str(), ti.precision.c_str(), ti.max_context,
              ci.device.c_str());
  CHECK_EQ(ti.name, std::string("tensorrt"));
  CHECK_EQ(ti.vocab_size, ci.vocab_size);
  const int32_t vocab = ci.vocab_size;
  const bool int8 = ti.precision == "int8";

  // Four prompts of pseudo-random ordinary tokens, arriving over the first
  // steps; the third is prefilled in two chunks while the others decode.
  constexpr int32_t kGenerate = 16;
  const int32_t lengths[4] = {7, 23, 40, 64}, arrive[4] = {0, 0, 1, 3}, chunk[4] = {7, 23, 20, 64};
  const int32_t lo = vocab > 1000 ? 100 : 0, hi = std::min(vocab, 32000);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  std::vector<Seq> seqs(4);
  int32_t longest = 0;
  for (int i = 0; i < 4; ++i) {
    for (int32_t j = 0; j < lengths[i]; ++j) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      seqs[i].context.push_back(lo + static_cast<int32_t>((state >> 33) % static_cast<uint64_t>(hi - lo)));
    }
    seqs[i].prompt = lengths[i];
    seqs[i].arrive = arrive[i];
    seqs[i].chunk = chunk[i];
    longest = std::max(longest, lengths[i] + kGenerate);
  }
  if (ti.max_context < longest) {
    neoserve::test::fail(__FILE__, __LINE__, "the engine's context (" + std::to_string(ti.max_context) +
                                                 ") is shorter than the test's sequences (" + std::to_string(longest) + ")");
    return;
  }
  // Block tables interleaved and taken from the end of the cache, so that
  // the paging is exercised (the same ids in both providers).
  const KvGeometry tk = trt->kv(), ck = cpu.kv();
  CHECK_EQ(tk.block_size, ck.block_size);
  const int32_t per_seq = (longest + tk.block_size - 1) / tk.block_size;
  const int32_t common = std::min(tk.num_blocks, ck.num_blocks);
  if (common < 4 * per_seq) {
    neoserve::test::fail(__FILE__, __LINE__, "KV caches too small for the test: " + std::to_string(common) + " blocks");
    return;
  }
  for (int i = 0; i < 4; ++i)
    for (int32_t k = 0; k < per_seq; ++k) seqs[i].blocks.push_back(common - 1 - (k * 4 + i));

  double worst = 0;  // fp16: max |Δ| / range of the CPU row; int8: relative L2
  const double tolerance = int8 ? 0.1 : 0.05;
  int rows_compared = 0, near_ties = 0;
  LogitsOut tout, cout_;
  for (int32_t step = 0;; ++step) {
    std::vector<SeqStep> batch;
    std::vector<int> owner;
    bool pending = false;
    for (int i = 0; i < 4; ++i) {
      Seq& s = seqs[i];
      if (s.generated >= kGenerate) continue;
      pending = true;
      if (step < s.arrive) continue;
      SeqStep st;
      st.id = static_cast<SeqId>(i);
      st.pos = s.fed;
      const int32_t n = s.fed < s.prompt ? std::min(s.chunk, s.prompt - s.fed) : 1;
      st.tokens = std::span<const int32_t>(s.context.data() + s.fed, n);
      st.kv_blocks = s.blocks;
      st.want_logits = s.fed + n >= s.prompt;
      batch.push_back(st);
      owner.push_back(i);
    }
    if (!pending) break;
    if (batch.empty()) continue;
    trt->step(batch, tout);
    cpu.step(batch, cout_);
    CHECK_EQ(tout.rows, cout_.rows);
    CHECK_EQ(tout.vocab, vocab);
    if (tout.rows != cout_.rows) return;
    int32_t row = 0;
    for (size_t b = 0; b < batch.size(); ++b) {
      Seq& s = seqs[owner[b]];
      s.fed += static_cast<int32_t>(batch[b].tokens.size());
      if (!batch[b].want_logits) continue;
      const float* t = tout.row(row);
      const float* c = cout_.row(row);
      ++row;
      double max_diff = 0, diff2 = 0, norm2 = 0;
      float lo_c = c[0], hi_c = c[0];
      bool finite = true;
      for (int32_t v = 0; v < vocab; ++v) {
        finite = finite && std::isfinite(t[v]);
        const double d = static_cast<double>(t[v]) - c[v];
        max_diff = std::max(max_diff, std::fabs(d));
        diff2 += d * d;
        norm2 += static_cast<double>(c[v]) * c[v];
        lo_c = std::min(lo_c, c[v]);
        hi_c = std::max(hi_c, c[v]);
      }
      CHECK(finite);
      const double range = std::max(1e-6, static_cast<double>(hi_c) - lo_c);
      const double error = int8 ? std::sqrt(diff2 / std::max(norm2, 1e-12)) : max_diff / range;
      worst = std::max(worst, error);
      ++rows_compared;
      if (!(error <= tolerance)) {
        neoserve::test::fail(__FILE__, __LINE__, "step " + std::to_string(step) + ", sequence " + std::to_string(owner[b]) +
                                                     ": logits differ by " + std::to_string(error) + " (tolerance " +
                                                     std::to_string(tolerance) + ")");
      }
      // Greedy tokens must agree, except where the CPU's top two are closer than the tolerance (a near tie).
      const int32_t ct = argmax(c, vocab), tt = argmax(t, vocab);
      if (ct != tt) {
        const double gap = static_cast<double>(c[ct]) - c[tt];
        if (gap <= tolerance * range) {
          ++near_ties;
          std::printf("  near tie at step %d, sequence %d: cpu %d, tensorrt %d (cpu gap %.4f)\n", step, owner[b], ct, tt, gap);
        } else {
          neoserve::test::fail(__FILE__, __LINE__, "step " + std::to_string(step) + ", sequence " + std::to_string(owner[b]) +
                                                       ": greedy token " + std::to_string(tt) + " from tensorrt, " +
                                                       std::to_string(ct) + " from the cpu (gap " + std::to_string(gap) + ")");
        }
      }
      // Both continue with the CPU's token, so that every later row is compared on the same context.
      s.context.push_back(ct);
      ++s.generated;
    }
  }
  std::printf("  %d logits rows compared, worst %s %.5f (tolerance %.2f), %d near ties\n", rows_compared,
              int8 ? "relative L2" : "max |dlogit| / range", worst, tolerance, near_ties);
  CHECK_EQ(rows_compared, 4 * kGenerate);

  // A malformed batch is refused before the device is touched, and the provider still works after it.
  const int32_t bad_token[1] = {vocab};
  SeqStep bad;
  bad.tokens = bad_token;
  bad.pos = 0;
  bad.kv_blocks = seqs[0].blocks;
  CHECK_THROWS(trt->step(std::span<const SeqStep>(&bad, 1), tout), ErrorCode::InvalidRequest, "outside the vocabulary");
  const int32_t ok_token[1] = {lo};
  const int32_t bad_blocks[1] = {tk.num_blocks};
  bad.tokens = ok_token;
  bad.kv_blocks = bad_blocks;
  CHECK_THROWS(trt->step(std::span<const SeqStep>(&bad, 1), tout), ErrorCode::InvalidRequest, "KV block");
  bad.kv_blocks = seqs[0].blocks;
  bad.pos = ti.max_context + 100000;
  CHECK_THROWS(trt->step(std::span<const SeqStep>(&bad, 1), tout), ErrorCode::InvalidRequest, "exceed");
  bad.pos = 0;
  trt->step(std::span<const SeqStep>(&bad, 1), tout);
  CHECK_EQ(tout.rows, 1);
}
