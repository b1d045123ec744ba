#include "random_model.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/model/half.h"

namespace neoserve::test {
namespace {

class Builder {
 public:
  Builder(ModelWeights& m, uint64_t seed) : m_(m), rng_(seed) {}

  // values uniform in [center - spread, center + spread], stored as `dtype`
  void add(const std::string& name, std::vector<int64_t> shape, DType dtype, float center, float spread) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = center + spread * u(rng_);
    const int64_t cols = shape.back();
    size_t nbytes = 0;
    switch (dtype) {
      case DType::F32: nbytes = n * 4; break;
      case DType::F16:
      case DType::BF16: nbytes = n * 2; break;
      case DType::Q8_0: nbytes = n / 32 * 34; break;
      default: throw std::logic_error("random_model: ggml block types other than Q8_0 come from llama-quantize");
    }
    auto buf = std::make_unique<uint8_t[]>(nbytes);
    uint8_t* p = buf.get();
    for (int64_t i = 0; i < n; ++i) {
      if (dtype == DType::F32) std::memcpy(p + 4 * i, &v[i], 4);
      if (dtype == DType::F16 || dtype == DType::BF16) {
        const uint16_t h = dtype == DType::F16 ? f32_to_fp16(v[i]) : f32_to_bf16(v[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
    }
    if (dtype == DType::Q8_0) {  // as llama.cpp quantizes: d = amax / 127, q = round(x / d)
      for (int64_t b = 0; b < n / 32; ++b) {
        float amax = 0;
        for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[b * 32 + i]));
        const float d = amax / 127.0f;
        const uint16_t dh = f32_to_fp16(d);
        std::memcpy(p + b * 34, &dh, 2);
        for (int i = 0; i < 32; ++i)
          p[b * 34 + 2 + i] = static_cast<uint8_t>(static_cast<int8_t>(d > 0 ? std::nearbyint(v[b * 32 + i] / d) : 0));
      }
    }
    (void)cols;
    Tensor t;
    t.name = name;
    t.dtype = dtype;
    t.shape = std::move(shape);
    t.data = p;
    t.nbytes = nbytes;
    m_.owned_buffers.push_back({std::move(buf), nbytes});
    m_.tensors[name] = t;
  }

 private:
  ModelWeights& m_;
  std::mt19937_64 rng_;
};

}  // namespace

std::shared_ptr<ModelWeights> make_random_model(const RandomModelSpec& s) {
  auto m = std::make_shared<ModelWeights>();
  m->source = "random-model";
  LlamaConfig& c = m->config;
  c.hidden_size = s.hidden;
  c.intermediate_size = s.ffn;
  c.num_hidden_layers = s.layers;
  c.num_attention_heads = s.heads;
  c.num_key_value_heads = s.kv_heads;
  c.head_dim = s.head_dim ? s.head_dim : s.hidden / s.heads;
  c.vocab_size = s.vocab;
  c.max_position_embeddings = s.max_pos;
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = s.rope_theta;
  c.tie_word_embeddings = s.tied;
  if (s.llama3_rope) {
    c.rope_scaling.type = "llama3";
    c.rope_scaling.factor = 8.0f;
    c.rope_scaling.low_freq_factor = 1.0f;
    c.rope_scaling.high_freq_factor = 4.0f;
    c.rope_scaling.original_max_position_embeddings = 32;
  }
  const int64_t H = s.hidden, F = s.ffn, qd = int64_t{s.heads} * c.head_dim, kvd = int64_t{s.kv_heads} * c.head_dim;
  // Norms stay fp32 for Q8_0 (as GGUF stores them), else share the weights' dtype.
  const DType norm_dtype = s.dtype == DType::Q8_0 ? DType::F32 : s.dtype;
  Builder b(*m, s.seed);
  auto lin = [&](const std::string& name, int64_t out, int64_t in) {
    b.add(name, {out, in}, s.dtype, 0.0f, std::sqrt(3.0f / static_cast<float>(in)));
  };
  b.add("model.embed_tokens.weight", {s.vocab, H}, s.dtype, 0.0f, 1.0f);
  for (int l = 0; l < s.layers; ++l) {
    auto n = [l](const char* suffix) { return layer_tensor_name(l, suffix); };
    b.add(n("input_layernorm.weight"), {H}, norm_dtype, 1.0f, 0.2f);
    b.add(n("post_attention_layernorm.weight"), {H}, norm_dtype, 1.0f, 0.2f);
    // q and k a little larger than 1/sqrt(in) so attention is not uniform
    b.add(n("self_attn.q_proj.weight"), {qd, H}, s.dtype, 0.0f, 2.0f * std::sqrt(3.0f / H));
    b.add(n("self_attn.k_proj.weight"), {kvd, H}, s.dtype, 0.0f, 2.0f * std::sqrt(3.0f / H));
    lin(n("self_attn.v_proj.weight"), kvd, H);
    lin(n("self_attn.o_proj.weight"), H, qd);
    lin(n("mlp.gate_proj.weight"), F, H);
    lin(n("mlp.up_proj.weight"), F, H);
    lin(n("mlp.down_proj.weight"), H, F);
  }
  b.add("model.norm.weight", {H}, norm_dtype, 1.0f, 0.2f);
  if (!s.tied) lin("lm_head.weight", s.vocab, H);
  return m;
}

}  // namespace neoserve::test
