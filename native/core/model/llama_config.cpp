#include "llama_config.h"

#include <cmath>

#include "../error.h"

namespace neoserve {

namespace {

// Generous ceilings: far above any released Llama-family model, low enough
// that products of them (rows * cols, layers * kv bytes) cannot overflow int64.
constexpr int32_t kMaxDim = 1 << 20;
constexpr int32_t kMaxLayers = 4096;
constexpr int32_t kMaxVocab = 1 << 24;
// More positions than any published model attends over (1M-token contexts exist);
// buffers sized by the context must stay allocatable.
constexpr int32_t kMaxContext = 1 << 24;
constexpr double kPi = 3.14159265358979323846;

void require(bool ok, const std::string& source, const std::string& what) {
  if (!ok) throw_load_error(source, "invalid config: " + what);
}

void require_range(int64_t v, int64_t max, const char* name, const std::string& source) {
  require(v > 0 && v <= max, source, std::string(name) + " is " + std::to_string(v) + ", expected 1.." + std::to_string(max));
}

}  // namespace

void LlamaConfig::validate(const std::string& source) const {
  require_range(hidden_size, kMaxDim, "hidden_size", source);
  require_range(intermediate_size, kMaxDim, "intermediate_size", source);
  require_range(num_hidden_layers, kMaxLayers, "num_hidden_layers", source);
  require_range(num_attention_heads, kMaxDim, "num_attention_heads", source);
  require_range(num_key_value_heads, kMaxDim, "num_key_value_heads", source);
  require_range(head_dim, kMaxDim, "head_dim", source);
  require_range(vocab_size, kMaxVocab, "vocab_size", source);
  require_range(max_position_embeddings, kMaxContext, "max_position_embeddings", source);
  require(num_attention_heads % num_key_value_heads == 0, source,
          "num_attention_heads (" + std::to_string(num_attention_heads) + ") is not a multiple of num_key_value_heads (" +
              std::to_string(num_key_value_heads) + ")");
  require(head_dim % 2 == 0, source, "head_dim (" + std::to_string(head_dim) + ") must be even for rotary embeddings");
  require(static_cast<int64_t>(num_attention_heads) * head_dim <= kMaxDim, source, "num_attention_heads * head_dim is too large");
  require(std::isfinite(rms_norm_eps) && rms_norm_eps > 0, source, "rms_norm_eps must be a positive number");
  require(std::isfinite(rope_theta) && rope_theta > 1.0f, source, "rope_theta must be a number greater than 1");
  if (rope_scaling.type == "llama3") {
    const RopeScaling& r = rope_scaling;
    require(std::isfinite(r.factor) && r.factor > 0, source, "rope_scaling.factor must be positive");
    require(std::isfinite(r.low_freq_factor) && r.low_freq_factor > 0, source, "rope_scaling.low_freq_factor must be positive");
    // The smooth interpolation divides by (high - low).
    require(std::isfinite(r.high_freq_factor) && r.high_freq_factor > r.low_freq_factor, source,
            "rope_scaling.high_freq_factor must be greater than low_freq_factor");
    require(r.original_max_position_embeddings > 0, source, "rope_scaling.original_max_position_embeddings must be positive");
  } else {
    require(rope_scaling.type.empty(), source, "unsupported rope_scaling type \"" + rope_scaling.type + "\"");
  }
  if (!rope_freq_factors.empty()) {
    require(rope_freq_factors.size() == static_cast<size_t>(head_dim / 2), source,
            "rope_freqs has " + std::to_string(rope_freq_factors.size()) + " factors, expected head_dim/2 = " +
                std::to_string(head_dim / 2));
    for (float f : rope_freq_factors) require(std::isfinite(f) && f > 0, source, "rope_freqs factors must be positive");
  }
  for (int32_t id : eos_token_ids)
    require(id >= 0 && id < vocab_size, source, "eos_token_id " + std::to_string(id) + " outside the vocabulary");
  require(bos_token_id < vocab_size, source, "bos_token_id " + std::to_string(bos_token_id) + " outside the vocabulary");
}

std::vector<float> rope_inv_freq(const LlamaConfig& c) {
  const int half = c.head_dim / 2;
  std::vector<float> out(static_cast<size_t>(half > 0 ? half : 0));
  for (int i = 0; i < half; ++i) {
    // Computed in double and rounded once, so every provider agrees bit for bit.
    double inv = 1.0 / std::pow(static_cast<double>(c.rope_theta), (2.0 * i) / c.head_dim);
    if (!c.rope_freq_factors.empty()) {
      // llama.cpp's form of llama3 scaling: per-frequency divisors stored in the GGUF.
      inv /= c.rope_freq_factors[static_cast<size_t>(i)];
    } else if (c.rope_scaling.type == "llama3") {
      // transformers _compute_llama3_parameters: long wavelengths are slowed by
      // `factor`, short ones kept, and the band between interpolated smoothly.
      const RopeScaling& r = c.rope_scaling;
      const double old_ctx = r.original_max_position_embeddings;
      const double low_freq_wavelen = old_ctx / r.low_freq_factor;
      const double high_freq_wavelen = old_ctx / r.high_freq_factor;
      const double wavelen = 2.0 * kPi / inv;
      if (wavelen > low_freq_wavelen) {
        inv = inv / r.factor;
      } else if (wavelen >= high_freq_wavelen) {  // medium: neither < high nor > low
        const double smooth = (old_ctx / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
        inv = (1.0 - smooth) * inv / r.factor + smooth * inv;
      }
    }
    out[static_cast<size_t>(i)] = static_cast<float>(inv);
  }
  return out;
}

}  // namespace neoserve
