// Hugging Face directories: config.json + safetensors (single and sharded),
// and every malformed variant failing as ModelLoadFailed naming the file.
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/model/model_weights.h"
#include "core/model/safetensors.h"
#include "harness.h"
#include "model_files.h"

using namespace neoserve;
using namespace neoserve::test;

namespace {

bool same_bytes(const Tensor& t, const TestTensor& want) {
  return t.nbytes == want.bytes.size() && std::memcmp(t.data, want.bytes.data(), t.nbytes) == 0;
}

// Every tensor loaded under its HF name with the written shape and bytes,
// pointing into one of the mappings (not a copy).
void check_all_tensors(const ModelWeights& w, const std::vector<TestTensor>& tensors) {
  CHECK_EQ(w.tensors.size(), tensors.size());
  for (const TestTensor& t : tensors) {
    const Tensor* got = w.find(t.name);
    CHECK(got != nullptr);
    if (!got) continue;
    CHECK(got->shape == t.shape);
    CHECK(got->dtype == DType::F32);
    CHECK(same_bytes(*got, t));
    bool inside = false;
    for (const auto& f : w.files) inside |= got->data >= f->data() && got->data + got->nbytes <= f->data() + f->size();
    CHECK(inside);
  }
}

std::vector<TestTensor> without(std::vector<TestTensor> v, const std::string& name) {
  std::erase_if(v, [&](const TestTensor& t) { return t.name == name; });
  return v;
}

TestTensor* by_name(std::vector<TestTensor>& v, const std::string& name) {
  for (TestTensor& t : v)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace

TEST("safetensors.single_file_directory_loads") {
  TempDir dir;
  TinyLlama m;
  const auto tensors = tiny_llama_tensors(m);
  write_hf_dir(dir.path(), m, tensors);
  auto w = load_model(dir.path());
  CHECK(w->format == ModelFormat::HuggingFace);
  CHECK_EQ(w->source, dir.path());
  const LlamaConfig& c = w->config;
  check_default_tiny_llama_config(c);
  CHECK(c.rope_scaling.type.empty());
  CHECK(w->gguf_tokenizer.tokens.empty());
  check_all_tensors(*w, tensors);
}

TEST("safetensors.sharded_directory_loads") {
  TempDir dir;
  TinyLlama m;
  const auto tensors = tiny_llama_tensors(m);
  write_hf_dir(dir.path(), m, tensors, 3);
  auto w = load_model(dir.path());
  CHECK_EQ(w->files.size(), 3u);
  check_all_tensors(*w, tensors);
}

TEST("safetensors.tied_embeddings_and_qwen2_biases") {
  TempDir dir;
  TinyLlama m;
  m.tie = true;
  m.qkv_bias = true;
  m.model_type = "qwen2";
  const auto tensors = tiny_llama_tensors(m);
  write_hf_dir(dir.path(), m, tensors);
  auto w = load_model(dir.path());
  CHECK(w->config.tie_word_embeddings);
  CHECK(w->find("lm_head.weight") == nullptr);
  CHECK(w->find("model.layers.1.self_attn.k_proj.bias") != nullptr);
  check_all_tensors(*w, tensors);
}

TEST("safetensors.config_defaults_and_variants") {
  TempDir dir;
  // A Mistral config with head_dim given explicitly (16, not hidden/heads = 12),
  // eos as a list, llama3 rope scaling under the new key, nulls meaning "default".
  // Shapes for hidden=48, head_dim=16: q {64,48}, k/v {32,48}, o {48,64}.
  std::vector<TestTensor> t2;
  uint32_t seed = 100;
  auto add = [&](const std::string& n, std::vector<int64_t> s) { t2.push_back(f32_tensor(n, std::move(s), seed++)); };
  add("model.embed_tokens.weight", {128, 48});
  add("model.norm.weight", {48});
  add("lm_head.weight", {128, 48});
  for (int l = 0; l < 2; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {48});
    add(p + "post_attention_layernorm.weight", {48});
    add(p + "self_attn.q_proj.weight", {64, 48});
    add(p + "self_attn.k_proj.weight", {32, 48});
    add(p + "self_attn.v_proj.weight", {32, 48});
    add(p + "self_attn.o_proj.weight", {48, 64});
    add(p + "mlp.gate_proj.weight", {96, 48});
    add(p + "mlp.up_proj.weight", {96, 48});
    add(p + "mlp.down_proj.weight", {48, 96});
  }
  std::string config = R"({"model_type": "mistral", "hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2,
    "num_attention_heads": 4, "head_dim": 16, "num_key_value_heads": 2, "rms_norm_eps": null,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192},
    "eos_token_id": [2, 5], "bos_token_id": null, "sliding_window": null, "__comment": "unknown keys are ignored"})";
  write_text(dir.file("config.json"), config);
  write_file(dir.file("model.safetensors"), safetensors_bytes(t2));
  auto w = load_model(dir.path());
  const LlamaConfig& c = w->config;
  CHECK_EQ(c.head_dim, 16);
  CHECK_EQ(c.vocab_size, 128);  // absent: taken from the embedding
  CHECK_EQ(c.num_key_value_heads, 2);
  CHECK_NEAR(c.rms_norm_eps, 1e-6, 1e-12);  // transformers' default
  CHECK_EQ(c.bos_token_id, -1);
  CHECK(c.eos_token_ids == (std::vector<int32_t>{2, 5}));
  CHECK_EQ(c.rope_scaling.type, std::string("llama3"));
  CHECK_NEAR(c.rope_scaling.factor, 8, 0);
  CHECK_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  CHECK(!c.tie_word_embeddings);

  // num_key_value_heads absent → multi-head attention; old "type" key for rope_scaling.
  TempDir dir2;
  TinyLlama mha;
  mha.kv_heads = 4;
  write_text(dir2.file("config.json"), R"({"model_type":"llama","hidden_size":64,"intermediate_size":96,"num_hidden_layers":2,
    "num_attention_heads":4,"vocab_size":128,"rope_scaling":{"type":"llama3","factor":2}})");
  write_file(dir2.file("model.safetensors"), safetensors_bytes(tiny_llama_tensors(mha)));
  auto w2 = load_model(dir2.path());
  CHECK_EQ(w2->config.max_position_embeddings, 2048);  // LlamaConfig's default
  CHECK_EQ(w2->config.num_key_value_heads, 4);
  CHECK_EQ(w2->config.rope_scaling.type, std::string("llama3"));
  CHECK_NEAR(w2->config.rope_scaling.factor, 2, 0);

  // Sliding-window attention caps the context (providers attend to all of it).
  TempDir dir3;
  write_hf_dir(dir3.path(), TinyLlama{}, tiny_llama_tensors(TinyLlama{}), 1, R"("sliding_window": 64)");
  int32_t context = load_model(dir3.path())->config.max_position_embeddings;
  CHECK_EQ(context, 64);
  TinyLlama qwen;
  qwen.model_type = "qwen2";
  write_hf_dir(dir3.path(), qwen, tiny_llama_tensors(qwen), 1, R"("sliding_window": 64, "use_sliding_window": false)");
  context = load_model(dir3.path())->config.max_position_embeddings;
  CHECK_EQ(context, 256);
}

TEST("safetensors.qwen3_needs_its_head_norms") {
  TempDir dir;
  TinyLlama qwen;
  qwen.model_type = "qwen3";
  auto tensors = tiny_llama_tensors(qwen);
  // Without head_dim, Qwen3's is 128 (transformers' default), not hidden / heads.
  write_hf_dir(dir.path(), qwen, tensors, 1);
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, "head_dim=128");
  const std::string head_dim = R"("head_dim": )" + std::to_string(qwen.head_dim());
  write_hf_dir(dir.path(), qwen, tensors, 1, head_dim);
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, "missing tensor model.layers.0.self_attn.q_norm.weight");
  for (int l = 0; l < qwen.layers; ++l)
    for (const char* part : {"q_norm", "k_norm"})
      tensors.push_back(f32_tensor("model.layers." + std::to_string(l) + ".self_attn." + part + ".weight", {qwen.head_dim()}, 7));
  write_hf_dir(dir.path(), qwen, tensors, 1, head_dim);
  const auto w = load_model(dir.path());
  CHECK(w->config.qk_norm);
  CHECK(!load_model(dir.path())->config.tie_word_embeddings);
  // A head norm of the wrong size names head_dim.
  tensors.back() = f32_tensor("model.layers.1.self_attn.k_norm.weight", {qwen.head_dim() + 1}, 7);
  write_hf_dir(dir.path(), qwen, tensors, 1, head_dim);
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, "k_norm.weight has shape");
}

TEST("safetensors.parse_buffer_metadata_and_empty") {
  const Bytes b = safetensors_raw(R"({"__metadata__":{"format":"pt"}})", {});
  CHECK(parse_safetensors(b.data(), b.size(), "mem").empty());
  // Other dtypes share the format; F16/BF16 keep their dtype; header padding with spaces is legal.
  const std::string header = R"({"a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[],"data_offsets":[8,10]}})";
  const Bytes b2 = safetensors_raw(header + "      ", Bytes(10, 1));
  auto ts = parse_safetensors(b2.data(), b2.size(), "mem");
  CHECK_EQ(ts.size(), 2u);
  CHECK(ts[0].name == "a" && ts[0].dtype == DType::F16 && ts[0].shape == (std::vector<int64_t>{2, 2}) && ts[0].nbytes == 8);
  CHECK(ts[1].name == "b" && ts[1].dtype == DType::BF16 && ts[1].shape.empty() && ts[1].nbytes == 2);
}

TEST("safetensors.container_errors_name_the_file") {
  TempDir dir;
  TinyLlama m;
  const auto tensors = tiny_llama_tensors(m);
  const std::string file = dir.file("model.safetensors");
  auto expect_error = [&](const Bytes& bytes, const std::string& needle) {
    write_hf_dir(dir.path(), m, tensors);
    write_file(file, bytes);
    CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, file + ": ");
    CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, needle);
  };
  const Bytes good = safetensors_bytes(tensors);
  expect_error(Bytes{}, "file is 0 bytes, too short");
  expect_error(Bytes(good.begin(), good.begin() + 5), "too short");
  // Header length past the end (and absurdly large).
  Bytes b = good;
  b[6] = 0x01;
  expect_error(b, "header length");
  expect_error(Bytes{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'}, "runs past the end of the file");
  // Truncated inside the header, and inside the data.
  expect_error(Bytes(good.begin(), good.begin() + 100), "runs past the end of the file");
  expect_error(Bytes(good.begin(), good.end() - 1), "past the end of the data");
  // Bad JSON, wrong JSON shape.
  expect_error(safetensors_raw("{\"a\": [1, 2", {}), "header: invalid JSON at byte 11");
  expect_error(safetensors_raw("[]", {}), "header is not a JSON object");
  expect_error(safetensors_raw(R"({"a": 5})", {}), "tensor a: entry is not an object");
  expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [1]}})", Bytes(4)), "tensor a: missing key \"data_offsets\"");
  expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": ["1"], "data_offsets": [0, 4]}})", Bytes(4)),
               "tensor a: expected integer, got string");
  expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", Bytes(4)), "negative dimension");
  expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 4294967296], "data_offsets": [0, 4]}})", Bytes(4)),
               "too many elements");
  // Dtypes.
  expect_error(safetensors_raw(R"({"model.embed_tokens.weight": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", Bytes(8)),
               "unsupported dtype I64 for tensor model.embed_tokens.weight");
  expect_error(safetensors_raw(R"({"a": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}})", Bytes(1)),
               "unsupported dtype F8_E4M3 for tensor a");
  // data_offsets out of range, backwards, wrong size, overlapping, malformed.
  expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", Bytes(4)),
               "tensor a: data_offsets [0, 8] past the end of the data (4 bytes)");
  expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", Bytes(8)),
               "tensor a: data_offsets [8, 4] run backwards");
  expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 8]}})", Bytes(8)),
               "tensor a: data_offsets cover 8 bytes, but F32 shape [1] needs 4");
  expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", Bytes(8)),
               "tensors a and b overlap");
  expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                  "b": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
                                  "c": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})", Bytes(16)),
               "tensors a and c overlap");
  expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", Bytes(4)), "data_offsets must be [begin, end]");
  expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", Bytes(4)), "negative data_offsets");
  expect_error(safetensors_raw(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                  "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", Bytes(4)), "duplicate key \"a\"");
}

TEST("safetensors.every_truncation_fails_cleanly") {
  TinyLlama m;
  m.layers = 1;
  const Bytes good = safetensors_bytes(tiny_llama_tensors(m));
  size_t step = 1;
  for (size_t n = 0; n < good.size(); n += step) {
    if (n > 4096) step = 97;  // every header byte, then a sample of the data
    bool threw = false;
    try {
      parse_safetensors(good.data(), n, "cut");
    } catch (const Error& e) {
      threw = e.code() == ErrorCode::ModelLoadFailed && std::string(e.what()).rfind("cut: ", 0) == 0;
    }
    if (!threw) { CHECK(threw); break; }
  }
}

TEST("safetensors.tensor_set_errors") {
  TempDir dir;
  TinyLlama m;
  auto tensors = tiny_llama_tensors(m);
  const std::string file = dir.file("model.safetensors");

  // Missing tensor.
  write_hf_dir(dir.path(), m, without(tensors, "model.layers.1.mlp.up_proj.weight"));
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, dir.path() + ": missing tensor model.layers.1.mlp.up_proj.weight");
  write_hf_dir(dir.path(), m, without(tensors, "lm_head.weight"));
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, "missing tensor lm_head.weight");

  // Mis-shaped tensor: k_proj written for 4 KV heads while the config says 2.
  auto bad = tensors;
  *by_name(bad, "model.layers.0.self_attn.k_proj.weight") = f32_tensor("model.layers.0.self_attn.k_proj.weight", {64, 64}, 9);
  write_hf_dir(dir.path(), m, bad);
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed,
               file + ": tensor model.layers.0.self_attn.k_proj.weight has shape [64, 64], expected [32, 64] from config "
                      "(num_key_value_heads=2, head_dim=16, hidden_size=64)");
  bad = tensors;
  *by_name(bad, "model.norm.weight") = f32_tensor("model.norm.weight", {64, 1}, 9);
  write_hf_dir(dir.path(), m, bad);
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, "tensor model.norm.weight has shape [64, 1], expected [64]");

  // Config disagreeing with the tensors: every projection is the wrong size.
  TinyLlama wide = m;
  wide.ffn = 128;
  write_hf_dir(dir.path(), wide, tensors);
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed,
               "mlp.gate_proj.weight has shape [96, 64], expected [128, 64] from config (intermediate_size=128, hidden_size=64)");
  TinyLlama fewer_heads = m;
  fewer_heads.heads = 2;  // head_dim 32: q [64,64] still fits, k/v [32,64] → expected [64,64]
  write_hf_dir(dir.path(), fewer_heads, tensors);
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, "k_proj.weight has shape [32, 64], expected [64, 64]");
  TinyLlama more_layers = m;
  more_layers.layers = 3;
  write_hf_dir(dir.path(), more_layers, tensors);
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, "missing tensor model.layers.2.input_layernorm.weight");

  // A bias the forward would silently ignore.
  bad = tensors;
  bad.push_back(f32_tensor("model.layers.0.self_attn.o_proj.bias", {64}, 3));
  write_hf_dir(dir.path(), m, bad);
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, "o_proj.bias is a bias the Llama forward does not have");
  // Attention biases come as a complete set.
  bad = tensors;
  bad.push_back(f32_tensor("model.layers.0.self_attn.q_proj.bias", {64}, 3));
  write_hf_dir(dir.path(), m, bad);
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, "missing tensor model.layers.0.self_attn.k_proj.bias");
}

TEST("safetensors.config_errors_name_config_json") {
  TempDir dir;
  TinyLlama m;
  const auto tensors = tiny_llama_tensors(m);
  const std::string cfg = dir.file("config.json");
  write_hf_dir(dir.path(), m, tensors);
  auto with_config = [&](const std::string& text, const std::string& needle) {
    write_text(cfg, text);
    CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, cfg + ": ");
    CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, needle);
  };
  with_config("{\"hidden_size\": 64,", "invalid JSON at byte 19");
  with_config("[]", "config is not a JSON object");
  with_config(R"({"model_type": "gemma", "hidden_size": 64})", "unsupported model_type \"gemma\"");
  with_config(R"({"architectures": ["PhiForCausalLM"], "hidden_size": 64})", "unsupported architecture \"PhiForCausalLM\"");
  with_config(R"({"model_type": "llama", "intermediate_size": 96})", "missing hidden_size");
  with_config(R"({"model_type": "llama", "hidden_size": "64"})", "hidden_size: expected integer, got string");
  with_config(R"({"model_type": "llama", "hidden_size": 64.5})", "hidden_size: expected integer, got number");
  with_config(R"({"model_type": "llama", "hidden_size": 99999999999})", "hidden_size: value 99999999999 does not fit in 32 bits");
  with_config(R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 5})",
              "hidden_size (64) is not a multiple of num_attention_heads (5)");
  with_config(tiny_llama_config(m, R"("rope_scaling": {"rope_type": "yarn", "factor": 4})"), "unsupported rope_scaling type \"yarn\"");
  with_config(tiny_llama_config(m, R"("rope_scaling": {"type": "linear", "factor": 4})"), "unsupported rope_scaling type \"linear\"");
  with_config(tiny_llama_config(m, R"("rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1})"),
              "invalid config: rope_scaling.high_freq_factor");
  write_text(cfg, tiny_llama_config(m, R"("tie_word_embeddings2": 1, "eos_token_id_x": "a")"));
  load_model(dir.path());  // unknown keys are fine...
  // ...but a known key with the wrong type is not (and duplicates are ambiguous).
  write_text(cfg, tiny_llama_config(m));
  std::string text = tiny_llama_config(m);
  text.replace(text.find("\"tie_word_embeddings\": false"), 28, "\"tie_word_embeddings\": 0");
  with_config(text, "expected boolean, got integer");
  with_config(tiny_llama_config(m, R"("hidden_size": 64)"), "duplicate key \"hidden_size\"");
  text = tiny_llama_config(m);
  text.replace(text.find("\"num_key_value_heads\": 2"), 24, "\"num_key_value_heads\": 3");
  with_config(text, "invalid config: num_attention_heads (4) is not a multiple of num_key_value_heads (3)");
  std::remove(cfg.c_str());
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, cfg + ": cannot open: No such file or directory");
}

TEST("safetensors.shard_errors") {
  TempDir dir;
  TinyLlama m;
  const auto tensors = tiny_llama_tensors(m);
  const std::string index = dir.file("model.safetensors.index.json");
  write_hf_dir(dir.path(), m, tensors, 2);
  const std::string shard2 = dir.file("model-00002-of-00002.safetensors");
  const Bytes shard2_bytes = read_file(shard2);

  // A shard file missing.
  std::remove(shard2.c_str());
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, shard2 + ": cannot open: No such file or directory");
  write_file(shard2, shard2_bytes);
  load_model(dir.path());

  // The index naming a tensor its shard does not hold, or the wrong shard.
  const Bytes index_bytes = read_file(index);
  const std::string good_index(index_bytes.begin(), index_bytes.end());
  std::string text = good_index;
  text.insert(text.find("\"weight_map\":{") + 14, "\"extra.weight\":\"model-00001-of-00002.safetensors\",");
  write_text(index, text);
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed,
               index + ": tensor extra.weight is listed in model-00001-of-00002.safetensors but that shard does not contain it");
  text = good_index;
  const size_t at = text.find("\"model.embed_tokens.weight\":\"model-00001-of-00002.safetensors\"");
  CHECK(at != std::string::npos);
  text.replace(at, 62, "\"model.embed_tokens.weight\":\"model-00002-of-00002.safetensors\"");
  write_text(index, text);
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed,
               "tensor model.embed_tokens.weight is listed in model-00002-of-00002.safetensors but found in");
  // Escaping the directory, malformed index, empty map.
  write_text(index, R"({"weight_map": {"a": "../model.safetensors"}})");
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, index + ": weight_map names shard \"../model.safetensors\" outside");
  write_text(index, R"({"weight_map": {"a": "/etc/passwd"}})");
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, "outside the model directory");
  write_text(index, R"({"weight_map": [1]})");
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, index + ": expected object, got array");
  write_text(index, R"({"metadata": {}})");
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, index + ": missing key \"weight_map\"");
  write_text(index, R"({"weight_map": {}})");
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, index + ": weight_map is empty");

  // The same tensor in two shards.
  write_text(index, good_index);
  Bytes dup = safetensors_bytes({tensors[0], tensors[1], tensors[3]});  // tensors[0] lives in shard 1
  write_file(shard2, dup);
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, "tensor " + tensors[0].name + " is also in");

  // Neither layout present.
  std::remove(index.c_str());
  CHECK_THROWS(load_model(dir.path()), ErrorCode::ModelLoadFailed, "no model.safetensors or model.safetensors.index.json");
}
