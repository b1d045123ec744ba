#include "model_files.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "core/model/half.h"
#include "harness.h"

namespace neoserve::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path_ = "/tmp/neoserve-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

void write_text(const std::string& path, const std::string& text) { write_file(path, Bytes(text.begin(), text.end())); }

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TestTensor f32_tensor(const std::string& name, std::vector<int64_t> shape, uint32_t seed) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  uint32_t x = seed * 2654435761u + 12345u;
  for (auto& f : v) {  // xorshift: reproducible, no std::random distribution differences across libraries
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    f = static_cast<float>(static_cast<int>(x % 2001u) - 1000) / 4096.0f;  // exact in fp16 and bf16
  }
  TestTensor t{name, "F32", std::move(shape), Bytes(v.size() * 4)};
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

std::vector<float> as_floats(const Bytes& bytes) {
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

Bytes f32_to_f16_bytes(const Bytes& f32) {
  const std::vector<float> v = as_floats(f32);
  Bytes out(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = f32_to_fp16(v[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

// --- safetensors -------------------------------------------------------------

static std::string shape_json(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string safetensors_header(const std::vector<TestTensor>& tensors, const std::string& metadata_json) {
  std::string h = "{\"__metadata__\":" + (metadata_json.empty() ? std::string("{\"format\":\"pt\"}") : metadata_json);
  size_t offset = 0;
  for (const TestTensor& t : tensors) {
    h += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":" + shape_json(t.shape) + ",\"data_offsets\":[" +
         std::to_string(offset) + "," + std::to_string(offset + t.bytes.size()) + "]}";
    offset += t.bytes.size();
  }
  return h + "}";
}

Bytes safetensors_raw(const std::string& header_json, const Bytes& data) {
  Bytes out;
  put_u64(out, header_json.size());
  out.insert(out.end(), header_json.begin(), header_json.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Bytes safetensors_bytes(const std::vector<TestTensor>& tensors, const std::string& header_override) {
  Bytes data;
  for (const TestTensor& t : tensors) data.insert(data.end(), t.bytes.begin(), t.bytes.end());
  return safetensors_raw(header_override.empty() ? safetensors_header(tensors) : header_override, data);
}

// --- tiny Llama ----------------------------------------------------------------

std::vector<TestTensor> tiny_llama_tensors(const TinyLlama& m) {
  const int64_t H = m.hidden, F = m.ffn, V = m.vocab, D = m.head_dim();
  const int64_t q = int64_t{m.heads} * D, kv = int64_t{m.kv_heads} * D;
  std::vector<TestTensor> out;
  uint32_t seed = 1;
  out.push_back(f32_tensor("model.embed_tokens.weight", {V, H}, seed++));
  for (int l = 0; l < m.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.push_back(f32_tensor(p + "input_layernorm.weight", {H}, seed++));
    out.push_back(f32_tensor(p + "self_attn.q_proj.weight", {q, H}, seed++));
    out.push_back(f32_tensor(p + "self_attn.k_proj.weight", {kv, H}, seed++));
    out.push_back(f32_tensor(p + "self_attn.v_proj.weight", {kv, H}, seed++));
    if (m.qkv_bias) {
      out.push_back(f32_tensor(p + "self_attn.q_proj.bias", {q}, seed++));
      out.push_back(f32_tensor(p + "self_attn.k_proj.bias", {kv}, seed++));
      out.push_back(f32_tensor(p + "self_attn.v_proj.bias", {kv}, seed++));
    }
    out.push_back(f32_tensor(p + "self_attn.o_proj.weight", {H, q}, seed++));
    out.push_back(f32_tensor(p + "post_attention_layernorm.weight", {H}, seed++));
    out.push_back(f32_tensor(p + "mlp.gate_proj.weight", {F, H}, seed++));
    out.push_back(f32_tensor(p + "mlp.up_proj.weight", {F, H}, seed++));
    out.push_back(f32_tensor(p + "mlp.down_proj.weight", {H, F}, seed++));
  }
  out.push_back(f32_tensor("model.norm.weight", {H}, seed++));
  if (!m.tie) out.push_back(f32_tensor("lm_head.weight", {V, H}, seed++));
  return out;
}

std::string tiny_llama_config(const TinyLlama& m, const std::string& extra) {
  const std::string arch = m.model_type == "qwen2" ? "Qwen2ForCausalLM" : m.model_type == "mistral" ? "MistralForCausalLM" : "LlamaForCausalLM";
  std::string s = "{\n  \"architectures\": [\"" + arch + "\"],\n  \"model_type\": \"" + m.model_type + "\",\n" +
                  "  \"hidden_size\": " + std::to_string(m.hidden) + ",\n  \"intermediate_size\": " + std::to_string(m.ffn) +
                  ",\n  \"num_hidden_layers\": " + std::to_string(m.layers) + ",\n  \"num_attention_heads\": " +
                  std::to_string(m.heads) + ",\n  \"num_key_value_heads\": " + std::to_string(m.kv_heads) +
                  ",\n  \"vocab_size\": " + std::to_string(m.vocab) +
                  ",\n  \"rms_norm_eps\": 1e-05,\n  \"rope_theta\": 10000.0,\n  \"max_position_embeddings\": 256,\n"
                  "  \"tie_word_embeddings\": " + (m.tie ? "true" : "false") +
                  ",\n  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n  \"torch_dtype\": \"float32\"";
  if (!extra.empty()) s += ",\n  " + extra;
  return s + "\n}\n";
}

void write_hf_dir(const std::string& dir, const TinyLlama& m, const std::vector<TestTensor>& tensors, int shards,
                  const std::string& config_extra) {
  fs::create_directories(dir);
  write_text(dir + "/config.json", tiny_llama_config(m, config_extra));
  if (shards <= 1) {
    write_file(dir + "/model.safetensors", safetensors_bytes(tensors));
    return;
  }
  std::vector<std::vector<TestTensor>> parts(static_cast<size_t>(shards));
  std::string index = "{\"metadata\":{\"total_size\":0},\"weight_map\":{";
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t s = i % static_cast<size_t>(shards);
    parts[s].push_back(tensors[i]);
    char file[64];
    std::snprintf(file, sizeof file, "model-%05zu-of-%05d.safetensors", s + 1, shards);
    index += (i ? ",\"" : "\"") + tensors[i].name + "\":\"" + file + "\"";
  }
  write_text(dir + "/model.safetensors.index.json", index + "}}");
  for (size_t s = 0; s < parts.size(); ++s) {
    char file[64];
    std::snprintf(file, sizeof file, "model-%05zu-of-%05d.safetensors", s + 1, shards);
    write_file(dir + "/" + file, safetensors_bytes(parts[s]));
  }
}

// --- GGUF ------------------------------------------------------------------------

void put_u32(Bytes& b, uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i))); }
void put_u64(Bytes& b, uint64_t v) { for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i))); }
void put_string(Bytes& b, const std::string& s) {
  put_u64(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}

void GgufWriter::kv_raw(const std::string& key, uint32_t type, const Bytes& encoded) { kv_.push_back({key, type, encoded}); }
void GgufWriter::remove_kv(const std::string& key) {
  std::erase_if(kv_, [&](const Kv& kv) { return kv.key == key; });
}
void GgufWriter::set_tensor_type(const std::string& name, uint32_t ggml_type) {
  for (Info& t : tensors_)
    if (t.name == name) t.type = ggml_type;
}
void GgufWriter::remove_tensor(const std::string& name) {
  std::erase_if(tensors_, [&](const Info& t) { return t.name == name; });
}
void GgufWriter::kv_u32(const std::string& key, uint32_t v) { Bytes b; put_u32(b, v); kv_raw(key, kU32, b); }
void GgufWriter::kv_i32(const std::string& key, int32_t v) { Bytes b; put_u32(b, static_cast<uint32_t>(v)); kv_raw(key, kI32, b); }
void GgufWriter::kv_u64(const std::string& key, uint64_t v) { Bytes b; put_u64(b, v); kv_raw(key, kU64, b); }
void GgufWriter::kv_f32(const std::string& key, float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  Bytes b;
  put_u32(b, bits);
  kv_raw(key, kF32, b);
}
void GgufWriter::kv_bool(const std::string& key, bool v) { kv_raw(key, kBool, Bytes{static_cast<uint8_t>(v)}); }
void GgufWriter::kv_string(const std::string& key, const std::string& v) { Bytes b; put_string(b, v); kv_raw(key, kString, b); }
void GgufWriter::kv_strings(const std::string& key, const std::vector<std::string>& v) {
  Bytes b;
  put_u32(b, kString);
  put_u64(b, v.size());
  for (const std::string& s : v) put_string(b, s);
  kv_raw(key, kArray, b);
}
void GgufWriter::kv_i32s(const std::string& key, const std::vector<int32_t>& v) {
  Bytes b;
  put_u32(b, kI32);
  put_u64(b, v.size());
  for (int32_t x : v) put_u32(b, static_cast<uint32_t>(x));
  kv_raw(key, kArray, b);
}

void GgufWriter::tensor(const std::string& name, uint32_t ggml_type, std::vector<uint64_t> ne, Bytes bytes) {
  tensors_.push_back({name, ggml_type, std::move(ne), std::move(bytes)});
}

Bytes GgufWriter::bytes() const {
  auto pad = [this](Bytes& b) { while (b.size() % alignment) b.push_back(0); };
  Bytes out(magic, magic + 4);
  put_u32(out, version);
  put_u64(out, tensors_.size());
  put_u64(out, kv_.size());
  kv_start = out.size();
  for (const Kv& kv : kv_) {
    put_string(out, kv.key);
    put_u32(out, kv.type);
    out.insert(out.end(), kv.encoded.begin(), kv.encoded.end());
  }
  tensor_info_start = out.size();
  uint64_t offset = 0;
  for (const Info& t : tensors_) {
    put_string(out, t.name);
    put_u32(out, static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) put_u64(out, d);
    put_u32(out, t.type);
    put_u64(out, offset);
    offset += (t.bytes.size() + alignment - 1) / alignment * alignment;
  }
  pad(out);
  data_start = out.size();
  for (const Info& t : tensors_) {
    out.insert(out.end(), t.bytes.begin(), t.bytes.end());
    pad(out);
  }
  return out;
}

Bytes permute_rows_like_llama_cpp(const Bytes& src, int64_t rows, int n_head) {
  // numpy: w.reshape(n_head, 2, half, row) .swapaxes(1, 2) .reshape(rows, row)
  const size_t row = src.size() / static_cast<size_t>(rows);
  const int64_t half = rows / n_head / 2;
  Bytes out(src.size());
  size_t dst_row = 0;  // walk the swapped array in C order: (head, j, i)
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t j = 0; j < half; ++j)
      for (int64_t i = 0; i < 2; ++i) {
        const int64_t src_row = (h * 2 + i) * half + j;  // element [h][i][j] of the reshaped source
        std::memcpy(out.data() + dst_row++ * row, src.data() + static_cast<size_t>(src_row) * row, row);
      }
  return out;
}

Bytes quantize_q8_0(const Bytes& f32) {
  const std::vector<float> v = as_floats(f32);
  Bytes out;
  for (size_t b = 0; b < v.size(); b += 32) {
    float amax = 0;
    for (size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[b + i]));
    const float d = amax / 127.0f;
    const uint16_t dh = f32_to_fp16(d);
    out.push_back(static_cast<uint8_t>(dh));
    out.push_back(static_cast<uint8_t>(dh >> 8));
    for (size_t i = 0; i < 32; ++i)
      out.push_back(static_cast<uint8_t>(static_cast<int8_t>(d == 0 ? 0 : std::lround(v[b + i] / d))));
  }
  return out;
}

static std::string gguf_name(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  static const std::pair<const char*, const char*> parts[] = {
      {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"}, {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"}, {"input_layernorm", "attn_norm"}, {"post_attention_layernorm", "ffn_norm"}};
  const std::string prefix = "model.layers.";
  const size_t dot = hf.find('.', prefix.size());
  const std::string layer = hf.substr(prefix.size(), dot - prefix.size());
  const std::string rest = hf.substr(dot + 1);
  for (const auto& [h, g] : parts)
    if (rest.rfind(h, 0) == 0) return "blk." + layer + "." + g + rest.substr(std::strlen(h));
  throw std::runtime_error("no GGUF name for " + hf);
}

GgufWriter tiny_llama_gguf(const TinyLlama& m, const std::vector<TestTensor>& hf, GgufWeights weights) {
  GgufWriter g;
  g.kv_string("general.architecture", "llama");
  g.kv_string("general.name", "tiny");
  g.kv_u32("llama.context_length", 256);
  g.kv_u32("llama.embedding_length", static_cast<uint32_t>(m.hidden));
  g.kv_u32("llama.block_count", static_cast<uint32_t>(m.layers));
  g.kv_u32("llama.feed_forward_length", static_cast<uint32_t>(m.ffn));
  g.kv_u32("llama.rope.dimension_count", static_cast<uint32_t>(m.head_dim()));
  g.kv_u32("llama.attention.head_count", static_cast<uint32_t>(m.heads));
  g.kv_u32("llama.attention.head_count_kv", static_cast<uint32_t>(m.kv_heads));
  g.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  g.kv_f32("llama.rope.freq_base", 10000.0f);
  g.kv_u32("general.file_type", 0);
  g.kv_string("tokenizer.ggml.model", "gpt2");
  g.kv_string("tokenizer.ggml.pre", "default");
  std::vector<std::string> tokens;
  for (int i = 0; i < m.vocab; ++i) tokens.push_back("t" + std::to_string(i));
  g.kv_strings("tokenizer.ggml.tokens", tokens);
  g.kv_i32s("tokenizer.ggml.token_type", std::vector<int32_t>(static_cast<size_t>(m.vocab), 1));
  g.kv_strings("tokenizer.ggml.merges", {"t 0", "t 1"});
  g.kv_u32("tokenizer.ggml.bos_token_id", 1);
  g.kv_u32("tokenizer.ggml.eos_token_id", 2);

  for (const TestTensor& t : hf) {
    Bytes data = t.bytes;
    const bool is_q = t.name.find("q_proj") != std::string::npos, is_k = t.name.find("k_proj") != std::string::npos;
    if (is_q || is_k) data = permute_rows_like_llama_cpp(data, t.shape[0], is_q ? m.heads : m.kv_heads);
    std::vector<uint64_t> ne(t.shape.rbegin(), t.shape.rend());
    uint32_t type = kGgmlF32;
    if (t.shape.size() == 2 && weights == GgufWeights::F16) { type = kGgmlF16; data = f32_to_f16_bytes(data); }
    if (t.shape.size() == 2 && weights == GgufWeights::Q8_0) { type = kGgmlQ8_0; data = quantize_q8_0(data); }
    g.tensor(gguf_name(t.name), type, ne, data);
  }
  return g;
}

void check_default_tiny_llama_config(const LlamaConfig& c) {
  CHECK_EQ(c.hidden_size, 64);
  CHECK_EQ(c.intermediate_size, 96);
  CHECK_EQ(c.num_hidden_layers, 2);
  CHECK_EQ(c.num_attention_heads, 4);
  CHECK_EQ(c.num_key_value_heads, 2);
  CHECK_EQ(c.head_dim, 16);
  CHECK_EQ(c.vocab_size, 128);
  CHECK_EQ(c.max_position_embeddings, 256);
  CHECK_NEAR(c.rms_norm_eps, 1e-5, 1e-12);
  CHECK_NEAR(c.rope_theta, 10000, 0);
  CHECK(!c.tie_word_embeddings);
  CHECK_EQ(c.bos_token_id, 1);
  CHECK(c.eos_token_ids == std::vector<int32_t>{2});
}

}  // namespace neoserve::test
