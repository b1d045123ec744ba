#include "hf_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "../error.h"
#include "../json/json.h"
#include "mapped_file.h"

namespace neoserve {

namespace {

// model_type values whose checkpoints have the Llama tensor layout and forward.
// Qwen2 adds q/k/v biases, Qwen3 an RMSNorm on each head of q and k; the
// loader keeps them and providers apply them.
constexpr const char* kLlamaFamily[] = {"llama", "mistral", "qwen2", "qwen3"};
constexpr const char* kLlamaArchitectures[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"};

const json::Value* present(const json::Value& obj, const char* key) {
  const json::Value* v = obj.find(key);
  return (v && !v->is_null()) ? v : nullptr;  // transformers writes null for "use the default"
}

int32_t to_int32(const json::Value& v, const char* key) {
  try {
    const int64_t i = v.as_int();
    if (i < std::numeric_limits<int32_t>::min() || i > std::numeric_limits<int32_t>::max())
      throw json::Error("value " + std::to_string(i) + " does not fit in 32 bits");
    return static_cast<int32_t>(i);
  } catch (const json::Error& e) {
    throw json::Error(std::string(key) + ": " + e.what());
  }
}

// eos_token_id: one id or a list of them; ids already known are not repeated.
void add_eos_ids(const json::Value& obj, LlamaConfig& c) {
  const json::Value* eos = present(obj, "eos_token_id");
  if (!eos) return;
  auto add = [&](const json::Value& v) {
    const int32_t id = to_int32(v, "eos_token_id");
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end()) c.eos_token_ids.push_back(id);
  };
  if (eos->is_array())
    for (const json::Value& id : eos->as_array()) add(id);
  else
    add(*eos);
}

int32_t get_int(const json::Value& obj, const char* key, int32_t fallback) {
  const json::Value* v = present(obj, key);
  return v ? to_int32(*v, key) : fallback;
}

int32_t require_int(const json::Value& obj, const char* key) {
  const json::Value* v = present(obj, key);
  if (!v) throw json::Error(std::string("missing ") + key);
  return to_int32(*v, key);
}

float get_float(const json::Value& obj, const char* key, float fallback) {
  const json::Value* v = present(obj, key);
  if (!v) return fallback;
  try {
    return static_cast<float>(v->as_double());
  } catch (const json::Error& e) {
    throw json::Error(std::string(key) + ": " + e.what());
  }
}

bool contains(const auto& list, const std::string& s) {
  for (const char* item : list)
    if (s == item) return true;
  return false;
}

bool mt_is(const json::Value& cfg, const char* type) {
  const json::Value* mt = present(cfg, "model_type");
  return mt && mt->is_string() && mt->as_string() == type;
}

void check_family(const json::Value& cfg) {
  if (const json::Value* mt = present(cfg, "model_type")) {
    const std::string& type = mt->as_string();
    if (!contains(kLlamaFamily, type))
      throw json::Error("unsupported model_type \"" + type + "\" (expected a Llama-family model: llama, mistral, qwen2, qwen3)");
    return;
  }
  if (const json::Value* archs = present(cfg, "architectures")) {
    for (const json::Value& a : archs->as_array())
      if (!contains(kLlamaArchitectures, a.as_string()))
        throw json::Error("unsupported architecture \"" + a.as_string() +
                          "\" (expected LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM or Qwen3ForCausalLM)");
  }
}

bool is_qwen3(const json::Value& cfg) {
  if (present(cfg, "model_type")) return mt_is(cfg, "qwen3");
  if (const json::Value* archs = present(cfg, "architectures"))
    for (const json::Value& a : archs->as_array())
      if (a.as_string() == "Qwen3ForCausalLM") return true;
  return false;
}

RopeScaling parse_rope_scaling(const json::Value& rs) {
  RopeScaling r;
  // transformers renamed "type" to "rope_type"; both appear in the wild.
  const json::Value* type = present(rs, "rope_type");
  if (!type) type = present(rs, "type");
  const std::string t = type ? type->as_string() : "";
  if (t.empty() || t == "default") return r;
  if (t != "llama3")
    throw json::Error("unsupported rope_scaling type \"" + t + "\" (supported: llama3)");
  r.type = "llama3";
  r.factor = get_float(rs, "factor", r.factor);
  r.low_freq_factor = get_float(rs, "low_freq_factor", r.low_freq_factor);
  r.high_freq_factor = get_float(rs, "high_freq_factor", r.high_freq_factor);
  r.original_max_position_embeddings = get_int(rs, "original_max_position_embeddings", r.original_max_position_embeddings);
  return r;
}

}  // namespace

LlamaConfig parse_hf_config(std::string_view json_text, const std::string& source) {
  try {
    const json::Value cfg = json::parse(json_text);
    if (!cfg.is_object()) throw json::Error("config is not a JSON object");
    check_family(cfg);

    LlamaConfig c;
    c.hidden_size = require_int(cfg, "hidden_size");
    c.intermediate_size = require_int(cfg, "intermediate_size");
    c.num_hidden_layers = require_int(cfg, "num_hidden_layers");
    c.num_attention_heads = require_int(cfg, "num_attention_heads");
    c.num_key_value_heads = get_int(cfg, "num_key_value_heads", c.num_attention_heads);
    if (const json::Value* hd = present(cfg, "head_dim")) {
      c.head_dim = to_int32(*hd, "head_dim");
    } else if (is_qwen3(cfg)) {
      c.head_dim = 128;  // transformers' Qwen3Config default
    } else {
      if (c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0)
        throw json::Error("hidden_size (" + std::to_string(c.hidden_size) + ") is not a multiple of num_attention_heads (" +
                          std::to_string(c.num_attention_heads) + ") and no head_dim is given");
      c.head_dim = c.hidden_size / c.num_attention_heads;
    }
    c.vocab_size = get_int(cfg, "vocab_size", 0);
    c.max_position_embeddings = get_int(cfg, "max_position_embeddings", c.max_position_embeddings);
    c.rms_norm_eps = get_float(cfg, "rms_norm_eps", 1e-6f);  // transformers' LlamaConfig default
    c.rope_theta = get_float(cfg, "rope_theta", 10000.0f);
    if (const json::Value* rs = present(cfg, "rope_scaling")) c.rope_scaling = parse_rope_scaling(*rs);
    if (const json::Value* tie = present(cfg, "tie_word_embeddings")) c.tie_word_embeddings = tie->as_bool();
    // Providers attend over the whole context. Within the window that is the
    // same as sliding-window attention (Mistral, Qwen2 with use_sliding_window),
    // so the usable context is capped at the window instead of diverging past it.
    const json::Value* use_swa = present(cfg, "use_sliding_window");
    c.qk_norm = is_qwen3(cfg);
    const bool swa = mt_is(cfg, "qwen2") || c.qk_norm ? (use_swa && use_swa->as_bool()) : true;
    if (const json::Value* window = present(cfg, "sliding_window"); window && swa) {
      const int32_t w = to_int32(*window, "sliding_window");
      if (w > 0 && w < c.max_position_embeddings) c.max_position_embeddings = w;
    }
    c.bos_token_id = get_int(cfg, "bos_token_id", -1);
    add_eos_ids(cfg, c);
    return c;
  } catch (const json::Error& e) {
    throw_load_error(source, e.what());
  }
}

void add_generation_config_eos(const std::string& dir, LlamaConfig& config) {
  const std::string path = (std::filesystem::path(dir) / "generation_config.json").string();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return;
  try {
    MappedFile file(path);
    const json::Value root = json::parse({reinterpret_cast<const char*>(file.data()), file.size()});
    if (!root.is_object()) throw json::Error("not a JSON object");
    const size_t known = config.eos_token_ids.size();
    add_eos_ids(root, config);
    // Checked here, where the file can be named (config.validate() checks config.json's).
    if (config.vocab_size > 0)
      for (size_t i = known; i < config.eos_token_ids.size(); ++i)
        if (config.eos_token_ids[i] < 0 || config.eos_token_ids[i] >= config.vocab_size)
          throw json::Error("eos_token_id " + std::to_string(config.eos_token_ids[i]) + " outside the vocabulary [0, " +
                            std::to_string(config.vocab_size) + ")");
  } catch (const json::Error& e) {
    throw_load_error(path, e.what());
  }
}

}  // namespace neoserve
