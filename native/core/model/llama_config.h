// The Llama-family hyper-parameters, whichever file they came from
// (config.json of a Hugging Face directory, or the <arch>.* keys of a GGUF):
// Llama, Mistral, Qwen2 (q/k/v biases) and Qwen3 (q/k norms).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace neoserve {

struct RopeScaling {
  std::string type;  // "" (none) or "llama3"
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int32_t original_max_position_embeddings = 8192;
};

struct LlamaConfig {
  int32_t hidden_size = 0;
  int32_t intermediate_size = 0;
  int32_t num_hidden_layers = 0;
  int32_t num_attention_heads = 0;
  int32_t num_key_value_heads = 0;
  int32_t head_dim = 0;  // hidden_size / num_attention_heads unless the config says otherwise
  int32_t vocab_size = 0;
  int32_t max_position_embeddings = 2048;
  float rms_norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  // Per-frequency divisors from a GGUF's rope_freqs.weight (llama3 scaling as
  // llama.cpp stores it); empty means "derive from rope_scaling".
  std::vector<float> rope_freq_factors;
  bool tie_word_embeddings = false;
  bool qk_norm = false;  // Qwen3: RMSNorm (weights of head_dim) on each head of q and k, before RoPE
  int32_t bos_token_id = -1;
  std::vector<int32_t> eos_token_ids;

  // Throws ModelLoadFailed naming `source` if the numbers cannot describe a model.
  void validate(const std::string& source) const;
};

// RoPE inverse frequencies, head_dim/2 of them, with llama3 scaling or GGUF
// frequency factors applied: the single source of truth for every provider.
std::vector<float> rope_inv_freq(const LlamaConfig& config);

}  // namespace neoserve
