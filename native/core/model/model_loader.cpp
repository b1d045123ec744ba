// load_model: picks the format, then holds every checkpoint to the same
// contract — the tensors a Llama forward reads exist, with the shapes the
// config implies — so providers never index past a tensor.
#include <cstring>
#include <filesystem>

#include "../error.h"
#include "model_loader.h"
#include "shape_text.h"

namespace neoserve {

namespace {

struct Expected {
  std::string name;
  std::vector<int64_t> shape;
  std::string why;  // the config values the shape comes from
  bool is_vector;   // norms and biases: must stay floating point
};

std::string kv(const char* key, int64_t v) { return std::string(key) + "=" + std::to_string(v); }

void check_tensor(const ModelWeights& w, const TensorFiles& files, const Expected& e) {
  const Tensor* t = w.find(e.name);
  if (!t) throw_load_error(w.source, "missing tensor " + e.name);
  auto file = files.find(e.name);
  const std::string& where = file == files.end() ? w.source : file->second;
  if (t->shape != e.shape)
    throw_load_error(where, "tensor " + e.name + " has shape " + shape_text(t->shape) + ", expected " + shape_text(e.shape) +
                                " from config (" + e.why + ")");
  const int64_t block = dtype_block_elems(t->dtype);
  if (e.is_vector && block > 1)
    throw_load_error(where, "tensor " + e.name + " is " + dtype_name(t->dtype) + "; norm weights and biases must be F32, F16 or BF16");
  if (t->cols() % block != 0)
    throw_load_error(where, std::string(dtype_name(t->dtype)) + " tensor " + e.name + " has " + std::to_string(t->cols()) +
                                " columns, not a multiple of " + std::to_string(block));
  const size_t expect_bytes = dtype_row_bytes(t->dtype, t->cols()) * static_cast<size_t>(t->numel() / (t->cols() ? t->cols() : 1));
  if (t->nbytes != expect_bytes || (t->nbytes > 0 && t->data == nullptr))
    throw_load_error(where, "tensor " + e.name + " holds " + std::to_string(t->nbytes) + " bytes, expected " +
                                std::to_string(expect_bytes) + " for " + dtype_name(t->dtype) + " " + shape_text(t->shape));
}

// Qwen2's q/k/v biases are applied by providers; other biases would be silently ignored.
bool is_unsupported_bias(const std::string& name) {
  if (name.size() < 5 || name.compare(name.size() - 5, 5, ".bias") != 0) return false;
  for (const char* ok : {".self_attn.q_proj.bias", ".self_attn.k_proj.bias", ".self_attn.v_proj.bias"})
    if (name.size() >= std::strlen(ok) && name.compare(name.size() - std::strlen(ok), std::strlen(ok), ok) == 0) return false;
  return name.rfind("model.layers.", 0) == 0 || name == "lm_head.bias";
}

}  // namespace

void finish_llama_weights(ModelWeights& w, const TensorFiles& files, const std::string& config_source) {
  LlamaConfig& c = w.config;
  if (c.vocab_size == 0) {
    const Tensor* embed = w.find("model.embed_tokens.weight");
    if (embed && embed->shape.size() == 2 && embed->shape[0] > 0 && embed->shape[0] <= INT32_MAX)
      c.vocab_size = static_cast<int32_t>(embed->shape[0]);
  }
  c.validate(config_source);

  const int64_t H = c.hidden_size, F = c.intermediate_size, V = c.vocab_size, D = c.head_dim;
  const int64_t q_rows = int64_t{c.num_attention_heads} * D, kv_rows = int64_t{c.num_key_value_heads} * D;
  const std::string q_why = kv("num_attention_heads", c.num_attention_heads) + ", " + kv("head_dim", D) + ", " + kv("hidden_size", H);
  const std::string kv_why = kv("num_key_value_heads", c.num_key_value_heads) + ", " + kv("head_dim", D) + ", " + kv("hidden_size", H);
  const std::string o_why = kv("hidden_size", H) + ", " + kv("num_attention_heads", c.num_attention_heads) + ", " + kv("head_dim", D);
  const std::string mlp_why = kv("intermediate_size", F) + ", " + kv("hidden_size", H);
  const std::string h_why = kv("hidden_size", H);
  const std::string vocab_why = kv("vocab_size", V) + ", " + kv("hidden_size", H);

  // Checked as listed, so a file missing layer 0 fails before 4096 layers of names are built.
  auto need = [&](std::string name, std::vector<int64_t> shape, const std::string& why, bool is_vector) {
    check_tensor(w, files, Expected{std::move(name), std::move(shape), why, is_vector});
  };
  need("model.embed_tokens.weight", {V, H}, vocab_why, false);
  need("model.norm.weight", {H}, h_why, true);
  if (!c.tie_word_embeddings || w.find("lm_head.weight")) need("lm_head.weight", {V, H}, vocab_why, false);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    auto name = [l](const char* s) { return layer_tensor_name(l, s); };
    need(name("input_layernorm.weight"), {H}, h_why, true);
    need(name("post_attention_layernorm.weight"), {H}, h_why, true);
    need(name("self_attn.q_proj.weight"), {q_rows, H}, q_why, false);
    need(name("self_attn.k_proj.weight"), {kv_rows, H}, kv_why, false);
    need(name("self_attn.v_proj.weight"), {kv_rows, H}, kv_why, false);
    need(name("self_attn.o_proj.weight"), {H, q_rows}, o_why, false);
    need(name("mlp.gate_proj.weight"), {F, H}, mlp_why, false);
    need(name("mlp.up_proj.weight"), {F, H}, mlp_why, false);
    need(name("mlp.down_proj.weight"), {H, F}, mlp_why, false);
    if (c.qk_norm) {  // Qwen3: an RMSNorm over each head of q and of k
      need(name("self_attn.q_norm.weight"), {D}, kv("head_dim", D), true);
      need(name("self_attn.k_norm.weight"), {D}, kv("head_dim", D), true);
    }
    // Attention biases (Qwen2) come as a set of three or not at all.
    const bool any_bias = w.find(name("self_attn.q_proj.bias")) || w.find(name("self_attn.k_proj.bias")) ||
                          w.find(name("self_attn.v_proj.bias"));
    if (any_bias) {
      need(name("self_attn.q_proj.bias"), {q_rows}, q_why, true);
      need(name("self_attn.k_proj.bias"), {kv_rows}, kv_why, true);
      need(name("self_attn.v_proj.bias"), {kv_rows}, kv_why, true);
    }
  }
  for (const auto& [name, t] : w.tensors) {
    if (is_unsupported_bias(name)) {
      auto file = files.find(name);
      throw_load_error(file == files.end() ? w.source : file->second,
                       "tensor " + name + " is a bias the Llama forward does not have (only q/k/v biases are supported)");
    }
  }
}

std::unique_ptr<ModelWeights> load_model(const std::string& path, LoadDepth depth) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw_load_error(path, "no such file or directory");

  if (fs::is_directory(st)) {
    auto w = std::make_unique<ModelWeights>();
    w->source = path;
    TensorFiles files;
    load_hf_directory(path, *w, files);
    finish_llama_weights(*w, files, (fs::path(path) / "config.json").string());
    return w;
  }

  auto file = std::make_unique<MappedFile>(path);
  if (file->size() >= 4 && std::memcmp(file->data(), "GGUF", 4) == 0) {
    auto w = load_gguf_buffer(file->data(), file->size(), path, depth);
    w->files.push_back(std::move(file));  // the tensors point into this mapping
    for (const auto& [p, n] : w->superseded) w->release(p, n);  // read once, into their rewritten copies
    return w;
  }
  if (path.size() >= 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0)
    throw_load_error(path, "a safetensors file needs its config.json: pass the model directory instead");
  throw_load_error(path, "not a model: expected a Hugging Face model directory or a GGUF file (bad magic)");
}

}  // namespace neoserve
