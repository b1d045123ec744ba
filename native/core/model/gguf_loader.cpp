// GGUF (llama, qwen2, qwen3 architectures) → ModelWeights in Hugging Face
// layout: <arch>.* keys become LlamaConfig, ggml tensor names become HF names, and the Q/K row
// permutation of llama.cpp's converter is undone so providers see one layout (LoadDepth::Weights),
// or noted in ModelWeights::interleaved_rows for a provider that undoes it as it reads (FileOrder).
#include <charconv>
#include <cstring>

#include "../error.h"
#include "ggml_blocks.h"
#include "gguf.h"
#include "mapped_file.h"
#include "model_loader.h"

namespace neoserve {

namespace {

class Metadata {
 public:
  Metadata(const GgufFile& f, const std::string& name) : f_(f), name_(name) {}

  const GgufValue* find(const char* key) const {
    auto it = f_.kv.find(key);
    return it == f_.kv.end() ? nullptr : &it->second;
  }
  [[noreturn]] void fail(const std::string& what) const { throw_load_error(name_, what); }

  // A count or size: any integer type, 0..INT32_MAX.
  int32_t get_int(const char* key, int32_t fallback, bool required = false) const {
    const GgufValue* v = find(key);
    if (!v) {
      if (required) fail(std::string("missing metadata ") + key);
      return fallback;
    }
    if (!v->is_integer()) fail(std::string("metadata ") + key + " is " + gguf_type_name(v->type) + ", expected an integer");
    if (v->i < 0 || v->i > INT32_MAX) fail(std::string("metadata ") + key + " = " + std::to_string(v->i) + " is out of range");
    return static_cast<int32_t>(v->i);
  }
  float get_float(const char* key, float fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (v->is_float()) return static_cast<float>(v->f);
    if (v->is_integer()) return static_cast<float>(v->i);
    fail(std::string("metadata ") + key + " is " + gguf_type_name(v->type) + ", expected a number");
  }
  std::string get_string(const char* key) const {
    const GgufValue* v = find(key);
    if (!v) return "";
    if (v->type != GgufType::STRING) fail(std::string("metadata ") + key + " is " + gguf_type_name(v->type) + ", expected a string");
    return std::string(v->str);
  }
  const GgufArray* get_array(const char* key, GgufType elem) const {
    const GgufValue* v = find(key);
    if (!v) return nullptr;
    if (v->type != GgufType::ARRAY || v->arr.elem != elem)
      fail(std::string("metadata ") + key + " is not an array of " + gguf_type_name(elem));
    return &v->arr;
  }

 private:
  const GgufFile& f_;
  const std::string& name_;
};

// The architectures whose GGUF keys and tensors map onto the Llama forward.
// convert_hf_to_gguf.py interleaves the rotary halves of Q/K rows for llama
// only; qwen2/qwen3 keep Hugging Face's rotate-half ("NEOX") order.
struct GgufArch {
  const char* name;
  bool permuted_qk;
  bool qk_norm;
};
constexpr GgufArch kArchitectures[] = {{"llama", true, false}, {"qwen2", false, false}, {"qwen3", false, true}};

LlamaConfig read_config(const Metadata& md, const GgufArch& arch) {
  const std::string prefix = std::string(arch.name) + ".";
  const auto key = [&](const char* k) { return prefix + k; };
  const auto has = [&](const char* k) { return md.find(key(k).c_str()) != nullptr; };
  const auto get_int = [&](const char* k, int32_t fallback, bool required = false) { return md.get_int(key(k).c_str(), fallback, required); };
  const auto get_float = [&](const char* k, float fallback) { return md.get_float(key(k).c_str(), fallback); };
  LlamaConfig c;
  c.qk_norm = arch.qk_norm;
  c.hidden_size = get_int("embedding_length", 0, true);
  c.num_hidden_layers = get_int("block_count", 0, true);
  c.intermediate_size = get_int("feed_forward_length", 0, true);
  c.num_attention_heads = get_int("attention.head_count", 0, true);
  c.num_key_value_heads = get_int("attention.head_count_kv", c.num_attention_heads);
  c.max_position_embeddings = get_int("context_length", c.max_position_embeddings);
  c.rms_norm_eps = get_float("attention.layer_norm_rms_epsilon", c.rms_norm_eps);
  c.rope_theta = get_float("rope.freq_base", c.rope_theta);
  if (c.num_attention_heads == 0) md.fail(key("attention.head_count") + " is 0");
  const int32_t derived = c.hidden_size / c.num_attention_heads;
  c.head_dim = get_int("attention.key_length", derived);
  if (has("attention.value_length") && get_int("attention.value_length", 0) != c.head_dim)
    md.fail(key("attention.value_length") + " differs from key_length; not a Llama attention");
  if (has("rope.dimension_count") && get_int("rope.dimension_count", 0) != c.head_dim)
    md.fail(key("rope.dimension_count") + " differs from the head size (partial rotary embeddings are not supported)");
  const std::string scaling = md.get_string(key("rope.scaling.type").c_str());
  if (!scaling.empty() && scaling != "none") md.fail("unsupported rope scaling type \"" + scaling + "\"");
  if (has("rope.scale_linear") && get_float("rope.scale_linear", 1.0f) != 1.0f) md.fail("unsupported linear rope scaling");
  c.vocab_size = get_int("vocab_size", 0);

  if (md.find("tokenizer.ggml.bos_token_id")) c.bos_token_id = md.get_int("tokenizer.ggml.bos_token_id", -1);
  // llama.cpp ends generation on end-of-turn and end-of-message tokens as well as EOS.
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    if (!md.find(key)) continue;
    const int32_t id = md.get_int(key, -1);
    bool seen = false;
    for (int32_t e : c.eos_token_ids) seen |= e == id;
    if (!seen) c.eos_token_ids.push_back(id);
  }
  return c;
}

GgufTokenizer read_tokenizer(const Metadata& md) {
  GgufTokenizer t;
  t.model = md.get_string("tokenizer.ggml.model");
  t.pre = md.get_string("tokenizer.ggml.pre");
  if (const GgufArray* a = md.get_array("tokenizer.ggml.tokens", GgufType::STRING)) t.tokens = gguf_strings(*a);
  if (const GgufArray* a = md.get_array("tokenizer.ggml.merges", GgufType::STRING)) t.merges = gguf_strings(*a);
  if (const GgufValue* v = md.find("tokenizer.ggml.token_type")) {
    if (v->type != GgufType::ARRAY || !gguf_int32s(v->arr, t.token_types))
      md.fail("metadata tokenizer.ggml.token_type is not an array of 32-bit integers");
    if (!t.tokens.empty() && t.token_types.size() != t.tokens.size())
      md.fail("tokenizer.ggml.token_type has " + std::to_string(t.token_types.size()) + " entries for " +
              std::to_string(t.tokens.size()) + " tokens");
  }
  // Special ids and the chat template, so a GGUF alone gives a complete tokenizer.
  t.bos_id = md.find("tokenizer.ggml.bos_token_id") ? md.get_int("tokenizer.ggml.bos_token_id", -1) : -1;
  t.eos_id = md.find("tokenizer.ggml.eos_token_id") ? md.get_int("tokenizer.ggml.eos_token_id", -1) : -1;
  t.eot_id = md.find("tokenizer.ggml.eot_token_id") ? md.get_int("tokenizer.ggml.eot_token_id", -1) : -1;
  if (const GgufValue* v = md.find("tokenizer.ggml.add_bos_token")) {
    if (v->type != GgufType::BOOL) md.fail("metadata tokenizer.ggml.add_bos_token is not a bool");
    t.add_bos = v->u ? 1 : 0;
  }
  t.chat_template = md.get_string("tokenizer.chat_template");
  return t;
}

// llama.cpp tensor names → Hugging Face names; unknown names pass through.
std::string hf_name(const std::string& g) {
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  static constexpr std::pair<const char*, const char*> kLayerParts[] = {
      {"attn_q", "self_attn.q_proj"},     {"attn_k", "self_attn.k_proj"}, {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"}, {"ffn_gate", "mlp.gate_proj"},  {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"},       {"attn_norm", "input_layernorm"}, {"ffn_norm", "post_attention_layernorm"},
      {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"},
  };
  if (g.rfind("blk.", 0) != 0) return g;
  const char* first = g.data() + 4;
  const char* last = g.data() + g.size();
  int layer = -1;
  auto [p, ec] = std::from_chars(first, last, layer);
  if (ec != std::errc() || p == first || p == last || *p != '.' || layer < 0) return g;
  const std::string rest(p + 1, last);  // e.g. "attn_q.weight"
  const size_t dot = rest.rfind('.');
  if (dot == std::string::npos) return g;
  const std::string part = rest.substr(0, dot), suffix = rest.substr(dot);  // suffix ".weight" / ".bias"
  for (const auto& [gguf_part, hf_part] : kLayerParts)
    if (part == gguf_part) return "model.layers." + std::to_string(layer) + "." + hf_part + suffix;
  return g;
}

// The tensor's rows as Hugging Face has them: an un-permuted copy (LoadDepth::Weights), or a note of the
// permutation for whoever reads them (FileOrder).
void unpermute_rows(ModelWeights& w, const std::string& name, int n_head, int head_dim, LoadDepth depth) {
  auto it = w.tensors.find(name);
  if (it == w.tensors.end()) return;
  Tensor& t = it->second;
  const size_t rows = static_cast<size_t>(n_head) * head_dim;
  if (t.shape.empty() || static_cast<size_t>(t.shape[0]) != rows || t.nbytes % rows != 0)
    throw Error(ErrorCode::Internal, "unpermute of " + name + ": shape not checked");
  if (depth == LoadDepth::FileOrder) {
    w.interleaved_rows[name] = {n_head, head_dim};
    return;
  }
  auto buffer = std::make_unique<uint8_t[]>(t.nbytes);
  unpermute_rows_into(t, n_head, head_dim, buffer.get());
  w.superseded.emplace_back(t.data, t.nbytes);
  t.data = buffer.get();
  w.owned_buffers.push_back({std::move(buffer), t.nbytes, true});
}

}  // namespace

std::unique_ptr<ModelWeights> load_gguf_buffer(const uint8_t* bytes, size_t size, const std::string& name, LoadDepth depth) {
  const GgufFile f = parse_gguf(bytes, size, name);
  const Metadata md(f, name);
  const std::string arch_name = md.get_string("general.architecture");
  if (arch_name.empty()) md.fail("missing general.architecture");
  const GgufArch* arch = nullptr;
  for (const GgufArch& a : kArchitectures)
    if (arch_name == a.name) arch = &a;
  if (!arch) md.fail("unsupported architecture " + arch_name + " (supported: llama, qwen2, qwen3)");

  auto w = std::make_unique<ModelWeights>();
  w->source = name;
  w->format = ModelFormat::GGUF;
  w->config = read_config(md, *arch);
  w->gguf_tokenizer = read_tokenizer(md);
  if (w->config.vocab_size == 0 && !w->gguf_tokenizer.tokens.empty()) {
    if (w->gguf_tokenizer.tokens.size() > static_cast<size_t>(INT32_MAX)) md.fail("too many tokens");
    w->config.vocab_size = static_cast<int32_t>(w->gguf_tokenizer.tokens.size());
  }

  TensorFiles files;
  for (const GgufTensorInfo& info : f.tensors) {
    Tensor t;
    if (!dtype_of_ggml(info.ggml_type, t.dtype))
      md.fail("unsupported tensor type " + std::to_string(info.ggml_type) + " for tensor " + info.name +
              " (supported: F32, F16, BF16, " + ggml_block_type_names() + ")");
    if (info.name == "rope_freqs.weight") {
      // llama3 scaling as llama.cpp stores it: one divisor per rotary frequency.
      if (t.dtype != DType::F32 || info.ne.size() != 1) md.fail("rope_freqs.weight must be a 1-D F32 tensor");
      w->config.rope_freq_factors.resize(static_cast<size_t>(info.ne[0]));
      if (info.nbytes > 0)  // memcpy: the data may be unaligned for float
        std::memcpy(w->config.rope_freq_factors.data(), info.data, info.nbytes);
      continue;
    }
    t.name = hf_name(info.name);
    for (auto d = info.ne.rbegin(); d != info.ne.rend(); ++d) t.shape.push_back(static_cast<int64_t>(*d));
    t.data = info.data;
    t.nbytes = info.nbytes;
    if (!files.emplace(t.name, name).second) md.fail("tensor " + info.name + " duplicates " + t.name);
    std::string key = t.name;
    w->tensors.emplace(std::move(key), std::move(t));
  }
  // llama.cpp omits output.weight when the head shares the embedding.
  w->config.tie_word_embeddings = w->find("lm_head.weight") == nullptr;

  finish_llama_weights(*w, files, name);

  const LlamaConfig& c = w->config;
  for (int l = 0; arch->permuted_qk && l < c.num_hidden_layers; ++l) {
    for (const char* suffix : {"weight", "bias"}) {
      unpermute_rows(*w, layer_tensor_name(l, (std::string("self_attn.q_proj.") + suffix).c_str()), c.num_attention_heads, c.head_dim, depth);
      unpermute_rows(*w, layer_tensor_name(l, (std::string("self_attn.k_proj.") + suffix).c_str()), c.num_key_value_heads, c.head_dim, depth);
    }
  }
  return w;
}

GgufTokenizer read_gguf_tokenizer(const std::string& path) {
  const MappedFile file(path);
  if (file.size() < 4 || std::memcmp(file.data(), "GGUF", 4) != 0) throw_load_error(path, "not a GGUF file (bad magic)");
  const GgufFile f = parse_gguf(file.data(), file.size(), path);
  // Copied out of the mapping (strings), so the result outlives it.
  return read_tokenizer(Metadata(f, path));
}

GgufTensorValues read_gguf_tensor(const std::string& path, const std::string& name) {
  const MappedFile file(path);
  if (file.size() < 4 || std::memcmp(file.data(), "GGUF", 4) != 0) throw_load_error(path, "not a GGUF file (bad magic)");
  const GgufFile f = parse_gguf(file.data(), file.size(), path);
  for (const GgufTensorInfo& info : f.tensors) {
    if (info.name != name) continue;
    GgufTensorValues out;
    if (!dtype_of_ggml(info.ggml_type, out.dtype))
      throw_load_error(path, "unsupported tensor type " + std::to_string(info.ggml_type) + " for tensor " + name);
    uint64_t n = 1;
    bool huge = false;  // a product past 64 bits: only possible beside a zero dimension (the bytes fit the file)
    for (auto d = info.ne.rbegin(); d != info.ne.rend(); ++d) {
      out.shape.push_back(static_cast<int64_t>(*d));
      huge |= __builtin_mul_overflow(n, *d, &n);
    }
    for (uint64_t d : info.ne)
      if (d == 0) n = 0, huge = false;
    if (huge || n > static_cast<uint64_t>(kMaxReadElements))
      throw Error(ErrorCode::OutOfMemory, path + ": tensor " + name + " has " + std::to_string(n) + " elements, more than " +
                                              std::to_string(kMaxReadElements) + " can be read at once");
    out.values.resize(static_cast<size_t>(n));
    dtype_to_f32(out.dtype, info.data, static_cast<int64_t>(n), out.values.data());
    return out;
  }
  throw_load_error(path, "no tensor named " + name);
}

}  // namespace neoserve
