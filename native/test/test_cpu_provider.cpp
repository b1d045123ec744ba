// The CPU provider's forward against a plainly written double-precision
// reference (contiguous KV, no paging, its own RoPE frequencies), and its
// invariances: chunking, batch composition, thread count.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "core/model/half.h"
#include "harness.h"
#include "providers/cpu/cpu_provider.h"
#include "random_model.h"

using namespace neoserve;
using namespace neoserve::cpu;
using neoserve::test::make_random_model;
using neoserve::test::RandomModelSpec;

namespace {

// ---- reference forward -------------------------------------------------------------

using Mat = std::vector<double>;  // row-major

Mat dequant(const Tensor& t) {
  Mat out(t.numel());
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    switch (t.dtype) {
      case DType::F32: { float f; std::memcpy(&f, t.data + 4 * i, 4); out[i] = f; break; }
      case DType::F16: std::memcpy(&h, t.data + 2 * i, 2); out[i] = fp16_to_f32(h); break;
      case DType::BF16: std::memcpy(&h, t.data + 2 * i, 2); out[i] = bf16_to_f32(h); break;
      case DType::Q8_0: {
        const uint8_t* blk = t.data + (i / 32) * 34;
        std::memcpy(&h, blk, 2);
        out[i] = fp16_to_f32(h) * static_cast<int8_t>(blk[2 + i % 32]);
        break;
      }
      default: throw std::logic_error("reference forward: F32, F16, BF16 and Q8_0 only");
    }
  }
  return out;
}

// Inverse frequencies written from the Hugging Face formulas, independently of rope_inv_freq().
std::vector<double> ref_inv_freq(const LlamaConfig& c) {
  std::vector<double> f(c.head_dim / 2);
  for (int i = 0; i < c.head_dim / 2; ++i) f[i] = 1.0 / std::pow(double(c.rope_theta), 2.0 * i / c.head_dim);
  if (c.rope_scaling.type == "llama3") {
    const RopeScaling& s = c.rope_scaling;
    const double low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
    const double high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
    for (double& x : f) {
      const double wavelen = 2 * M_PI / x;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) { x /= s.factor; continue; }
      const double smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      x = (1 - smooth) * x / s.factor + smooth * x;
    }
  }
  return f;
}

// Symmetric int8 per 32-block, as the int8 path does to weights at load and
// to activations before each matmul (ggml's Q8_0 quantizer): q = rne(x *
// 127/max), the block scale max/127 rounded to fp16. Written with the same
// fp32 steps, so that values exactly halfway between two steps (common with
// bf16 weights: x = max/2 gives 63.5) round alike.
void quantize_blocks(double* x, int64_t n) {
  for (int64_t b = 0; b < n; b += 32) {
    const int64_t e = std::min(n, b + 32);
    float amax = 0;
    for (int64_t i = b; i < e; ++i) amax = std::max(amax, std::fabs(static_cast<float>(x[i])));
    const float d = fp16_round(amax / 127.0f);
    const float inv = amax > 0 ? 127.0f / amax : 0.0f;
    for (int64_t i = b; i < e; ++i) x[i] = double(d) * std::nearbyint(static_cast<float>(x[i]) * inv);
  }
}

struct RefModel {
  LlamaConfig c;
  std::map<std::string, Mat> w;
  bool int8 = false;      // emulate the int8 path: quantized weights and activations
  bool bf16_acts = false;  // emulate bf16 dot products: activations rounded to bf16 before each matmul
  RefModel(const ModelWeights& m, bool emulate_int8, bool emulate_bf16_acts = false)
      : c(m.config), int8(emulate_int8), bf16_acts(emulate_bf16_acts) {
    for (const auto& [name, t] : m.tensors) {
      w[name] = dequant(t);
      if (int8 && t.shape.size() == 2)
        for (int64_t r = 0; r < t.shape[0]; ++r) quantize_blocks(w[name].data() + r * t.shape[1], t.shape[1]);
    }
  }
  const Mat& get(const std::string& n) const { return w.at(n); }

  // y[n] = sum_k W[n][k] x[k]
  std::vector<double> linear(const Mat& W, std::vector<double> x, int64_t rows) const {
    const int64_t cols = static_cast<int64_t>(x.size());
    if (int8) quantize_blocks(x.data(), cols);
    if (bf16_acts)
      for (double& v : x) v = bf16_to_f32(f32_to_bf16(static_cast<float>(v)));
    std::vector<double> y(rows, 0.0);
    for (int64_t n = 0; n < rows; ++n)
      for (int64_t k = 0; k < cols; ++k) y[n] += W[n * cols + k] * x[k];
    return y;
  }
  std::vector<double> rmsnorm(const std::vector<double>& x, const Mat& g) const {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double r = 1.0 / std::sqrt(ss / x.size() + c.rms_norm_eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * g[i];
    return y;
  }
  void rope(std::vector<double>& v, int heads, int pos, const std::vector<double>& inv) const {
    const int d = c.head_dim, half = d / 2;
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < half; ++i) {
        const double a = v[h * d + i], b = v[h * d + i + half];
        const double cs = std::cos(pos * inv[i]), sn = std::sin(pos * inv[i]);
        v[h * d + i] = a * cs - b * sn;
        v[h * d + i + half] = b * cs + a * sn;
      }
  }

  // Logits after every token of `tokens` (positions 0..n-1).
  std::vector<std::vector<double>> run(const std::vector<int32_t>& tokens) const {
    const int H = c.hidden_size, d = c.head_dim, nh = c.num_attention_heads, nkv = c.num_key_value_heads;
    const std::vector<double> inv = ref_inv_freq(c);
    std::vector<std::vector<std::vector<double>>> K(c.num_hidden_layers), V(c.num_hidden_layers);
    std::vector<std::vector<double>> logits;
    const Mat& emb = get("model.embed_tokens.weight");
    const Mat& head = c.tie_word_embeddings ? emb : get("lm_head.weight");
    for (size_t p = 0; p < tokens.size(); ++p) {
      std::vector<double> x(emb.begin() + int64_t(tokens[p]) * H, emb.begin() + int64_t(tokens[p] + 1) * H);
      for (int l = 0; l < c.num_hidden_layers; ++l) {
        auto n = [l](const char* s) { return layer_tensor_name(l, s); };
        std::vector<double> xn = rmsnorm(x, get(n("input_layernorm.weight")));
        std::vector<double> q = linear(get(n("self_attn.q_proj.weight")), xn, nh * d);
        std::vector<double> k = linear(get(n("self_attn.k_proj.weight")), xn, nkv * d);
        std::vector<double> v = linear(get(n("self_attn.v_proj.weight")), xn, nkv * d);
        rope(q, nh, static_cast<int>(p), inv);
        rope(k, nkv, static_cast<int>(p), inv);
        K[l].push_back(k);
        V[l].push_back(v);
        std::vector<double> att(nh * d, 0.0);
        for (int h = 0; h < nh; ++h) {
          const int g = h / (nh / nkv);
          std::vector<double> s(p + 1);
          for (size_t j = 0; j <= p; ++j) {
            double dot = 0;
            for (int i = 0; i < d; ++i) dot += q[h * d + i] * K[l][j][g * d + i];
            s[j] = dot / std::sqrt(double(d));
          }
          const double mx = *std::max_element(s.begin(), s.end());
          double sum = 0;
          for (double& e : s) sum += (e = std::exp(e - mx));
          for (size_t j = 0; j <= p; ++j)
            for (int i = 0; i < d; ++i) att[h * d + i] += s[j] / sum * V[l][j][g * d + i];
        }
        std::vector<double> o = linear(get(n("self_attn.o_proj.weight")), att, H);
        for (int i = 0; i < H; ++i) x[i] += o[i];
        xn = rmsnorm(x, get(n("post_attention_layernorm.weight")));
        std::vector<double> gate = linear(get(n("mlp.gate_proj.weight")), xn, c.intermediate_size);
        std::vector<double> up = linear(get(n("mlp.up_proj.weight")), xn, c.intermediate_size);
        for (int i = 0; i < c.intermediate_size; ++i) gate[i] = gate[i] / (1 + std::exp(-gate[i])) * up[i];
        std::vector<double> down = linear(get(n("mlp.down_proj.weight")), gate, H);
        for (int i = 0; i < H; ++i) x[i] += down[i];
      }
      logits.push_back(linear(head, rmsnorm(x, get("model.norm.weight")), c.vocab_size));
    }
    return logits;
  }
};

// ---- driving the provider ----------------------------------------------------------

std::vector<int32_t> prompt(int n, int vocab, int seed) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 37 + seed * 11 + 5) % vocab;
  return t;
}

// A sequence's block table: blocks first, first + stride, ... (interleaved with other sequences').
std::vector<int32_t> blocks_for(int first, int stride, int count) {
  std::vector<int32_t> b(count);
  for (int i = 0; i < count; ++i) b[i] = first + i * stride;
  return b;
}

// Feeds `tokens` in chunks of the given sizes; returns the logits after each chunk.
std::vector<std::vector<float>> feed(CpuProvider& p, const std::vector<int32_t>& tokens, const std::vector<int32_t>& table,
                                     const std::vector<int>& chunks) {
  std::vector<std::vector<float>> out;
  int pos = 0;
  LogitsOut lo;
  for (int n : chunks) {
    SeqStep s{1, std::span<const int32_t>(tokens.data() + pos, n), pos, table, true};
    p.step(std::span<const SeqStep>(&s, 1), lo);
    out.emplace_back(lo.data.begin(), lo.data.end());
    pos += n;
  }
  return out;
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

struct Variant {
  const char* name;
  RandomModelSpec spec;
  std::string precision;
  double tol;      // max |provider - reference| relative to max |reference logit|
  double rms_tol = 1e-4;  // rms(provider - reference) relative to rms(reference logits)
  bool emulate_int8 = false;  // reference quantizes weights and activations like the int8 path
};

std::vector<Variant> variants() {
  std::vector<Variant> v;
  RandomModelSpec gqa;  // 64 hidden, 4 heads, 2 kv heads
  v.push_back({"gqa-f32", gqa, "auto", 1e-4});
  RandomModelSpec mha = gqa;
  mha.kv_heads = 4;
  v.push_back({"mha-f32", mha, "auto", 1e-4});
  RandomModelSpec tied = gqa;
  tied.tied = true;
  v.push_back({"tied-f32", tied, "auto", 1e-4});
  RandomModelSpec odd;
  odd.hidden = 72; odd.ffn = 100; odd.heads = 6; odd.kv_heads = 2; odd.vocab = 131; odd.layers = 3;
  v.push_back({"odd-72-100-f32", odd, "auto", 1e-4});
  RandomModelSpec l3 = gqa;
  l3.llama3_rope = true;
  l3.rope_theta = 500000.0f;
  v.push_back({"llama3-rope-f32", l3, "auto", 1e-4});
  RandomModelSpec f16 = gqa;
  f16.dtype = DType::F16;
  v.push_back({"f16", f16, "auto", 1e-4});
  RandomModelSpec bf16 = odd;
  bf16.dtype = DType::BF16;
  // With bf16 dot products, as with the int8 path below: now and then an
  // activation of the engine (fp32) and of the reference (double) round to
  // neighbouring bf16 values, one element a bf16 step (2^-8) off, which the
  // random layers carry on (~3e-3 rms seen; without bf16 dots, ~1e-6).
  v.push_back({"bf16-odd", bf16, "auto", 3e-2, 1e-2});
  v.push_back({"bf16-as-f32", bf16, "f32", 1e-4});
  RandomModelSpec q8 = gqa;
  q8.dtype = DType::Q8_0;
  q8.ffn = 128;
  v.push_back({"q8_0-as-f32", q8, "f32", 1e-4});  // dequantized at load: exact weights
  // The integer paths against a reference that quantizes the same way: what is
  // left is fp32 vs double, which now and then moves an activation across a
  // rounding boundary of its int8 step (one step of one element: up to ~3e-3
  // rms seen; none at all gives ~2e-7).
  v.push_back({"q8_0", q8, "auto", 3e-2, 1e-2, true});
  v.push_back({"int8-from-f32", gqa, "int8", 3e-2, 1e-2, true});
  v.push_back({"int8-odd", odd, "int8", 3e-2, 1e-2, true});
  v.push_back({"int8-tied", tied, "int8", 3e-2, 1e-2, true});
  // ... and against the exact model: the quantization error itself, which on
  // these random 2-3 layer models is ~3-6% rms of the logits. (bf16 weights
  // stay here: products of their short mantissas land exactly halfway between
  // two int8 steps, where the reference's double activations break the tie
  // differently from the provider's fp32 ones.)
  v.push_back({"int8-vs-exact", gqa, "int8", 0.15, 0.1});
  RandomModelSpec bf16_tied = bf16;
  bf16_tied.tied = true;
  v.push_back({"int8-tied-bf16-vs-exact", bf16_tied, "int8", 0.15, 0.1});
  return v;
}

}  // namespace

TEST("cpu.forward_matches_double_reference") {
  for (const Variant& var : variants()) {
    auto model = make_random_model(var.spec);
    CpuProviderOptions opt;
    opt.precision = var.precision;
    opt.threads = 2;
    CpuProvider p(model, opt);
    const std::vector<int32_t> toks = prompt(23, var.spec.vocab, 3);
    // bf16 weights run as bf16 dot products where the CPU has them: the reference rounds activations alike.
    const bool bf16_dots = var.spec.dtype == DType::BF16 && var.precision == "auto" && best_kernels().bf16_layout == WFormat::BF16P16;
    const auto expect = RefModel(*model, var.emulate_int8, bf16_dots).run(toks);
    // A prefill chunk of 19, then 4 decode steps; block size 16 spans two blocks.
    const auto got = feed(p, toks, blocks_for(3, 1, 2), {19, 1, 1, 1, 1});
    const int at[] = {18, 19, 20, 21, 22};
    double worst = 0, err2 = 0, ref2 = 0;
    for (int i = 0; i < 5; ++i) {
      const std::vector<double>& e = expect[at[i]];
      const double scale = max_abs(e);
      for (size_t n = 0; n < e.size(); ++n) {
        worst = std::max(worst, std::fabs(got[i][n] - e[n]) / scale);
        err2 += (got[i][n] - e[n]) * (got[i][n] - e[n]);
        ref2 += e[n] * e[n];
      }
    }
    const double rms = std::sqrt(err2 / ref2);
    if (getenv("NEOSERVE_TEST_VERBOSE")) std::fprintf(stderr, "  %s: max %g rms %g\n", var.name, worst, rms);
    if (!(worst <= var.tol) || !(rms <= var.rms_tol)) {
      CHECK(worst <= var.tol);
      CHECK(rms <= var.rms_tol);
      std::fprintf(stderr, "  variant %s: worst error %g of max |logit| (tol %g), rms error %g of rms logit (tol %g)\n",
                   var.name, worst, var.tol, rms, var.rms_tol);
    }
  }
}

// Attention's online softmax carries a running max and sum across chunks of
// about 256 positions (whole KV blocks): 600 positions in chunks of 256 with
// blocks of 1 (a chunk's rescale over many blocks), 255 with blocks of 3, 256
// with blocks of 16, one chunk of 1024 with blocks of 1024 all match the
// double reference, which takes the whole row's softmax at once.
TEST("cpu.online_softmax_across_chunks_matches_double_reference") {
  RandomModelSpec spec;
  spec.max_pos = 1024;
  auto model = make_random_model(spec);
  const std::vector<int32_t> toks = prompt(600, spec.vocab, 5);
  const auto expect = RefModel(*model, false).run(toks);
  for (int32_t block : {1, 3, 16, 1024}) {
    CpuProviderOptions opt;
    opt.threads = 2;
    opt.kv_block_size = block;
    CpuProvider p(model, opt);
    const int32_t blocks = (600 + block - 1) / block;
    const auto got = feed(p, toks, blocks_for(0, 1, blocks), {300, 290, 9, 1});
    const int at[] = {299, 589, 598, 599};
    for (int i = 0; i < 4; ++i) {
      const std::vector<double>& e = expect[at[i]];
      double worst = 0;
      for (size_t n = 0; n < e.size(); ++n) worst = std::max(worst, std::fabs(got[i][n] - e[n]) / max_abs(e));
      if (!(worst <= 1e-4)) std::fprintf(stderr, "  block %d, position %d: worst error %g\n", block, at[i], worst);
      CHECK(worst <= 1e-4);
    }
  }
}

TEST("cpu.chunked_prefill_equals_one_chunk_and_token_by_token") {
  for (const char* precision : {"auto", "int8"}) {
    RandomModelSpec spec;
    spec.hidden = 72; spec.ffn = 100; spec.heads = 6; spec.kv_heads = 3;
    auto model = make_random_model(spec);
    CpuProviderOptions opt;
    opt.precision = precision;
    CpuProvider p(model, opt);
    const std::vector<int32_t> toks = prompt(40, spec.vocab, 1);
    const std::vector<int32_t> table = blocks_for(0, 2, 3);  // 48 positions
    const auto whole = feed(p, toks, table, {40}).back();
    const auto single = feed(p, toks, table, std::vector<int>(40, 1)).back();
    const auto chunked = feed(p, toks, table, {5, 11, 16, 7, 1}).back();
    CHECK(whole == single);  // bit-identical
    CHECK(whole == chunked);
  }
}

TEST("cpu.batch_invariance_alone_vs_mixed_batch_vs_threads") {
  for (const auto& [precision, kv_dtype] : {std::pair{"auto", "f32"}, {"int8", "f32"}, {"auto", "f16"}}) {
    RandomModelSpec spec;
    spec.vocab = 101;
    auto model = make_random_model(spec);
    auto run = [&](int threads, bool mixed) {
      CpuProviderOptions opt;
      opt.precision = precision;
      opt.kv_cache_dtype = kv_dtype;
      opt.threads = threads;
      CpuProvider p(model, opt);
      // Sequence A: prompt of 21, then 3 decode tokens. In mixed mode four
      // other sequences share each step: two prefilling, two decoding.
      const std::vector<int32_t> a = prompt(24, spec.vocab, 0);
      std::vector<std::vector<int32_t>> others;
      for (int s = 1; s <= 4; ++s) others.push_back(prompt(40, spec.vocab, s));
      std::vector<std::vector<int32_t>> tables;
      for (int s = 0; s < 5; ++s) tables.push_back(blocks_for(s, 5, 4));  // interleaved blocks
      std::vector<std::vector<float>> logits_a;
      int other_pos[4] = {0, 0, 0, 0};
      const int a_chunks[] = {21, 1, 1, 1};
      int a_pos = 0;
      LogitsOut out;
      for (int chunk : a_chunks) {
        std::vector<SeqStep> batch;
        if (mixed) {
          for (int s = 0; s < 2; ++s) {  // others 0, 1 prefill in chunks of 7 and 9; 2, 3 decode
            const int n = s == 0 ? 7 : 9;
            batch.push_back({SeqId(10 + s), std::span<const int32_t>(others[s].data() + other_pos[s], n), other_pos[s], tables[s + 1], s == 0});
            other_pos[s] += n;
          }
        }
        batch.insert(batch.begin() + (mixed ? 1 : 0),
                     SeqStep{1, std::span<const int32_t>(a.data() + a_pos, chunk), a_pos, tables[0], true});
        if (mixed)
          for (int s = 2; s < 4; ++s) {
            batch.push_back({SeqId(10 + s), std::span<const int32_t>(others[s].data() + other_pos[s], 1), other_pos[s], tables[s + 1], true});
            other_pos[s] += 1;
          }
        p.step(batch, out);
        const int row = mixed ? 1 : 0;  // rows follow the batch order of steps that want logits: other 0, then A
        logits_a.emplace_back(out.row(row), out.row(row) + out.vocab);
        a_pos += chunk;
      }
      return logits_a;
    };
    const auto alone1 = run(1, false);
    CHECK(alone1 == run(2, false));
    CHECK(alone1 == run(1, true));
    CHECK(alone1 == run(2, true));
  }
}

// An fp16 KV cache: half the bytes per block, and logits within fp16's rounding
// of the keys and values (2^-11 relative) of the fp32 cache's, over a prompt
// long enough for several attention chunks.
TEST("cpu.fp16_kv_cache_halves_memory_and_stays_near_fp32") {
  RandomModelSpec spec;
  spec.max_pos = 1024;
  auto model = make_random_model(spec);
  const std::vector<int32_t> toks = prompt(600, spec.vocab, 9);
  std::vector<std::vector<std::vector<float>>> got;
  size_t bytes[2];
  for (const char* dtype : {"f32", "f16"}) {
    CpuProviderOptions opt;
    opt.threads = 2;
    opt.kv_block_size = 16;
    opt.kv_cache_dtype = dtype;
    CpuProvider p(model, opt);
    bytes[got.size()] = p.kv().bytes_per_block;
    CHECK_EQ(p.info().memory.kv_bytes, size_t(p.kv().num_blocks) * p.kv().bytes_per_block);
    got.push_back(feed(p, toks, blocks_for(0, 1, 600 / 16 + 1), {300, 290, 9, 1}));
  }
  CHECK_EQ(bytes[1] * 2, bytes[0]);
  for (size_t i = 0; i < got[0].size(); ++i) {
    double err2 = 0, ref2 = 0;
    for (size_t n = 0; n < got[0][i].size(); ++n) {
      err2 += (got[1][i][n] - got[0][i][n]) * (got[1][i][n] - got[0][i][n]);
      ref2 += got[0][i][n] * got[0][i][n];
    }
    const double rms = std::sqrt(err2 / ref2);
    if (!(rms < 2e-3 && rms > 0)) std::fprintf(stderr, "  row %zu: rms %g of the fp32 cache's logits\n", i, rms);
    CHECK(rms < 2e-3);
    CHECK(rms > 0);  // the keys and values really were rounded
  }
}

TEST("cpu.bad_batches_throw_invalid_request") {
  RandomModelSpec spec;
  spec.max_pos = 64;
  auto model = make_random_model(spec);
  CpuProviderOptions opt;
  opt.kv_memory_bytes = 8 * (size_t(2) * 2 * 2 * 16 * 16 * 4);  // 8 blocks of (layers * K,V * kv_dim * block) floats
  CpuProvider p(model, opt);
  CHECK_EQ(p.kv().num_blocks, 8);
  LogitsOut out;
  const std::vector<int32_t> good = {1, 2, 3};
  const std::vector<int32_t> table = {0, 1, 2, 3};
  auto one = [&](std::span<const int32_t> toks, int32_t pos, std::span<const int32_t> blocks) {
    SeqStep s{7, toks, pos, blocks, true};
    p.step(std::span<const SeqStep>(&s, 1), out);
  };
  const std::vector<int32_t> bad_tok = {1, 97};
  const std::vector<int32_t> neg_tok = {-1};
  const std::vector<int32_t> empty;
  const std::vector<int32_t> bad_block = {0, 8};
  const std::vector<int32_t> neg_block = {-3};
  CHECK_THROWS(one(bad_tok, 0, table), ErrorCode::InvalidRequest, "token id 97");
  CHECK_THROWS(one(neg_tok, 0, table), ErrorCode::InvalidRequest, "token id -1");
  CHECK_THROWS(one(empty, 0, table), ErrorCode::InvalidRequest, "no tokens");
  CHECK_THROWS(one(good, -1, table), ErrorCode::InvalidRequest, "negative position");
  CHECK_THROWS(one(good, 62, table), ErrorCode::InvalidRequest, "exceed the context");
  CHECK_THROWS(one(good, 15, std::span<const int32_t>(table.data(), 1)), ErrorCode::InvalidRequest, "block table");
  CHECK_THROWS(one(good, 14, bad_block), ErrorCode::InvalidRequest, "KV block 8");
  CHECK_THROWS(one(good, 0, neg_block), ErrorCode::InvalidRequest, "KV block -3");
  // The provider still works after rejected batches, and the last block of the context is usable.
  one(good, 0, table);
  CHECK_EQ(out.rows, 1);
  const std::vector<int32_t> full = {0, 1, 2, 3};
  one(good, 61, full);
  CHECK_EQ(out.rows, 1);
  // No logits wanted: zero rows.
  SeqStep s{7, good, 0, table, false};
  p.step(std::span<const SeqStep>(&s, 1), out);
  CHECK_EQ(out.rows, 0);
  CHECK(out.data.empty());
}

TEST("cpu.options_info_and_geometry") {
  RandomModelSpec spec;
  auto model = make_random_model(spec);
  CpuProviderOptions bad;
  bad.precision = "fp8";
  CHECK_THROWS(CpuProvider(model, bad), ErrorCode::InvalidRequest, "precision");
  bad.precision = "auto";
  bad.kv_block_size = 0;
  CHECK_THROWS(CpuProvider(model, bad), ErrorCode::InvalidRequest, "kvBlockSize");
  bad.kv_block_size = 16;
  bad.threads = -1;
  CHECK_THROWS(CpuProvider(model, bad), ErrorCode::InvalidRequest, "threads");
  bad.threads = 0;
  bad.kv_cache_dtype = "bf16";
  CHECK_THROWS(CpuProvider(model, bad), ErrorCode::InvalidRequest, "kvCacheDtype");
  bad.kv_cache_dtype = "f32";
  bad.kv_memory_bytes = 100;
  CHECK_THROWS(CpuProvider(model, bad), ErrorCode::InvalidRequest, "smaller than one KV block");

  CpuProviderOptions opt;
  opt.threads = 2;
  CpuProvider p(model, opt);
  const ProviderInfo i = p.info();
  CHECK_EQ(i.name, std::string("cpu"));
  CHECK(i.device.find("2 threads") != std::string::npos);
  CHECK(i.device.find(best_kernels().isa) != std::string::npos);
  CHECK_EQ(i.precision, std::string("f32"));
  CHECK_EQ(i.vocab_size, 97);
  CHECK_EQ(i.max_context, 256);
  const KvGeometry g = p.kv();
  CHECK_EQ(g.block_size, 16);
  CHECK_EQ(g.bytes_per_block, size_t(2) * 2 * 32 * 16 * 4);  // layers * (K,V) * kv_dim * positions * fp32
  CHECK_EQ(g.num_blocks, 8 * 256 / 16);                        // default: 8 sequences of the full context

  opt.precision = "int8";
  CHECK_EQ(CpuProvider(model, opt).info().precision, std::string("int8"));
  spec.dtype = DType::Q8_0;
  CHECK_EQ(CpuProvider(make_random_model(spec), CpuProviderOptions{}).info().precision, std::string("q8_0"));
  CHECK_EQ(CpuProvider(make_random_model(spec), opt).info().precision, std::string("q8_0"));
  spec.dtype = DType::BF16;
  CHECK_EQ(CpuProvider(make_random_model(spec), CpuProviderOptions{}).info().precision, std::string("bf16"));
}
