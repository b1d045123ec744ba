// GGUF: llama metadata → config, llama.cpp names → HF names, Q/K rows
// un-permuted, and every malformed file failing as ModelLoadFailed naming it.
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/model/model_loader.h"
#include "harness.h"
#include "model_files.h"

using namespace neoserve;
using namespace neoserve::test;

namespace {

bool same_bytes(const Tensor& t, const Bytes& want) {
  return t.nbytes == want.size() && std::memcmp(t.data, want.data(), t.nbytes) == 0;
}

std::unique_ptr<ModelWeights> load_bytes(const TempDir& dir, const Bytes& bytes, const std::string& name = "model.gguf") {
  write_file(dir.file(name), bytes);
  return load_model(dir.file(name));
}

// load_model on the bytes must fail with ModelLoadFailed "<file>: ...needle...".
void expect_gguf_error(const Bytes& bytes, const std::string& needle) {
  TempDir dir;
  const std::string path = dir.file("bad.gguf");
  write_file(path, bytes);
  CHECK_THROWS(load_model(path), ErrorCode::ModelLoadFailed, path + ": ");
  CHECK_THROWS(load_model(path), ErrorCode::ModelLoadFailed, needle);
  // The buffer entry point the fuzzer uses says the same.
  CHECK_THROWS(load_gguf_buffer(bytes.data(), bytes.size(), "buf"), ErrorCode::ModelLoadFailed, needle);
}

void patch_u64(Bytes& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

// Each HF tensor loaded from a GGUF of the same model: same name, shape, and
// the bytes the converter started from (after the dtype conversion).
void check_hf_layout(const ModelWeights& w, const std::vector<TestTensor>& hf, GgufWeights kind) {
  for (const TestTensor& t : hf) {
    const Tensor* got = w.find(t.name);
    CHECK(got != nullptr);
    if (!got) continue;
    CHECK(got->shape == t.shape);
    Bytes want = t.bytes;
    DType dtype = DType::F32;
    if (t.shape.size() == 2 && kind == GgufWeights::F16) { want = f32_to_f16_bytes(want); dtype = DType::F16; }
    if (t.shape.size() == 2 && kind == GgufWeights::Q8_0) { want = quantize_q8_0(want); dtype = DType::Q8_0; }
    CHECK(got->dtype == dtype);
    if (!same_bytes(*got, want)) ::neoserve::test::fail(__FILE__, __LINE__, "bytes differ for " + t.name);
  }
}

}  // namespace

TEST("gguf.f32_loads_in_hugging_face_layout") {
  TempDir dir;
  TinyLlama m;
  const auto hf = tiny_llama_tensors(m);
  const GgufWriter g = tiny_llama_gguf(m, hf);
  const Bytes bytes = g.bytes();
  auto w = load_bytes(dir, bytes);
  CHECK(w->format == ModelFormat::GGUF);
  CHECK_EQ(w->source, dir.file("model.gguf"));
  const LlamaConfig& c = w->config;
  check_default_tiny_llama_config(c);  // vocab_size: no llama.vocab_size, so from the token list
  CHECK(c.rope_freq_factors.empty());
  const GgufTokenizer& tok = w->gguf_tokenizer;
  CHECK_EQ(tok.model, std::string("gpt2"));
  CHECK_EQ(tok.pre, std::string("default"));
  CHECK_EQ(tok.tokens.size(), 128u);
  CHECK_EQ(tok.tokens[77], std::string("t77"));
  CHECK(tok.merges == (std::vector<std::string>{"t 0", "t 1"}));
  CHECK(tok.token_types == std::vector<int32_t>(128, 1));
  CHECK_EQ(w->tensors.size(), hf.size());
  check_hf_layout(*w, hf, GgufWeights::F32);

  // The file really holds permuted Q/K (so the equality above proves the
  // un-permute), and the rewritten rows live in owned buffers.
  const Tensor& q = w->get("model.layers.0.self_attn.q_proj.weight");
  const Bytes permuted = permute_rows_like_llama_cpp(hf[2].bytes, 64, 4);
  CHECK(hf[2].name == "model.layers.0.self_attn.q_proj.weight");
  CHECK(std::search(bytes.begin(), bytes.end(), permuted.begin(), permuted.end()) != bytes.end());
  CHECK(permuted != hf[2].bytes);
  const MappedFile& file = *w->files.at(0);
  CHECK(q.data < file.data() || q.data >= file.data() + file.size());
  CHECK_EQ(w->owned_buffers.size(), 4u);  // q and k of two layers
  const Tensor& v = w->get("model.layers.0.self_attn.v_proj.weight");
  CHECK(v.data >= file.data() && v.data + v.nbytes <= file.data() + file.size());
}

// The tokenizer alone, as text workers read it: the same metadata as a full
// load, without checking tensors (a file of no supported architecture still has one).
TEST("gguf.tokenizer_reads_alone") {
  TempDir dir;
  TinyLlama m;
  const auto hf = tiny_llama_tensors(m);
  write_file(dir.file("model.gguf"), tiny_llama_gguf(m, hf).bytes());
  const GgufTokenizer tok = read_gguf_tokenizer(dir.file("model.gguf"));
  auto w = load_model(dir.file("model.gguf"));
  CHECK(tok.tokens == w->gguf_tokenizer.tokens);
  CHECK(tok.merges == w->gguf_tokenizer.merges);
  CHECK(tok.token_types == w->gguf_tokenizer.token_types);
  CHECK_EQ(tok.model, std::string("gpt2"));

  write_file(dir.file("not.gguf"), Bytes{'G', 'G', 'U'});
  CHECK_THROWS(read_gguf_tokenizer(dir.file("not.gguf")), ErrorCode::ModelLoadFailed, "not.gguf");
  CHECK_THROWS(read_gguf_tokenizer(dir.file("absent.gguf")), ErrorCode::ModelLoadFailed, "absent.gguf");
}

TEST("gguf.q8_0_and_f16_unpermute_whole_rows") {
  TempDir dir;
  TinyLlama m;
  const auto hf = tiny_llama_tensors(m);
  auto w8 = load_bytes(dir, tiny_llama_gguf(m, hf, GgufWeights::Q8_0).bytes(), "q8.gguf");
  check_hf_layout(*w8, hf, GgufWeights::Q8_0);
  CHECK(w8->get("model.norm.weight").dtype == DType::F32);
  auto w16 = load_bytes(dir, tiny_llama_gguf(m, hf, GgufWeights::F16).bytes(), "f16.gguf");
  check_hf_layout(*w16, hf, GgufWeights::F16);
}

TEST("gguf.mha_gqa_and_attention_biases_unpermute") {
  TempDir dir;
  for (int kv_heads : {1, 2, 4}) {
    TinyLlama m;
    m.kv_heads = kv_heads;
    m.qkv_bias = true;  // llama.cpp permutes q/k biases with their weights
    m.layers = 1;
    const auto hf = tiny_llama_tensors(m);
    auto w = load_bytes(dir, tiny_llama_gguf(m, hf).bytes());
    CHECK_EQ(w->config.num_key_value_heads, kv_heads);
    check_hf_layout(*w, hf, GgufWeights::F32);
  }
}

TEST("gguf.v2_alignment_tied_rope_freqs_and_unknown_metadata") {
  TempDir dir;
  TinyLlama m;
  m.tie = true;
  const auto hf = tiny_llama_tensors(m);
  GgufWriter g = tiny_llama_gguf(m, hf, GgufWeights::Q8_0);
  g.version = 2;
  g.alignment = 64;
  g.kv_u32("general.alignment", 64);
  g.kv_u32("llama.vocab_size", 128);
  g.kv_u32("tokenizer.ggml.eot_token_id", 7);
  // Values of every type under keys nobody reads: all must be skipped exactly.
  Bytes b;
  g.kv_raw("x.u8", kU8, {7});
  g.kv_raw("x.i8", kI8, {0xff});
  g.kv_raw("x.u16", kU16, {1, 2});
  g.kv_raw("x.i16", kI16, {1, 2});
  g.kv_i32("x.i32", -5);
  g.kv_u64("x.u64", 1ull << 40);
  b.clear(); put_u64(b, 5); g.kv_raw("x.i64", kI64, b);
  b.clear(); put_u64(b, 0x3ff0000000000000ull); g.kv_raw("x.f64", kF64, b);
  g.kv_bool("x.bool", true);
  g.kv_string("x.str", "h\xc3\xa9llo");
  g.kv_strings("x.strs", {"", "a", std::string(300, 'z')});
  g.kv_strings("x.no_strs", {});
  // An array of arrays: [[1,2],[3]] of u32.
  b.clear();
  put_u32(b, kArray); put_u64(b, 2);
  put_u32(b, kU32); put_u64(b, 2); put_u32(b, 1); put_u32(b, 2);
  put_u32(b, kU32); put_u64(b, 1); put_u32(b, 3);
  g.kv_raw("x.nested", kArray, b);
  b.clear(); put_u32(b, kF64); put_u64(b, 2); put_u64(b, 0); put_u64(b, 0);
  g.kv_raw("x.f64s", kArray, b);
  // llama3 scaling as llama.cpp stores it.
  std::vector<float> factors;
  for (int i = 0; i < 8; ++i) factors.push_back(1.0f + 0.5f * i);
  Bytes fb(factors.size() * 4);
  std::memcpy(fb.data(), factors.data(), fb.size());
  g.tensor("rope_freqs.weight", kGgmlF32, {8}, fb);

  const Bytes bytes = g.bytes();
  CHECK_EQ(g.data_start % 64, 0u);
  auto w = load_bytes(dir, bytes);
  CHECK(w->config.tie_word_embeddings);
  CHECK(w->find("lm_head.weight") == nullptr);
  CHECK(w->find("rope_freqs.weight") == nullptr);
  CHECK(w->config.rope_freq_factors == factors);
  CHECK(w->config.eos_token_ids == (std::vector<int32_t>{2, 7}));
  check_hf_layout(*w, hf, GgufWeights::Q8_0);
  const std::vector<float> inv = rope_inv_freq(w->config);
  CHECK_NEAR(inv[3], std::pow(10000.0, -6.0 / 16) / 2.5, 1e-7);
}

TEST("gguf.container_errors") {
  TinyLlama m;
  m.layers = 1;
  const auto hf = tiny_llama_tensors(m);
  const GgufWriter good_writer = tiny_llama_gguf(m, hf);
  const Bytes good = good_writer.bytes();

  Bytes b = good;
  b[3] = 'X';
  {
    TempDir dir;
    write_file(dir.file("m.gguf"), b);
    CHECK_THROWS(load_model(dir.file("m.gguf")), ErrorCode::ModelLoadFailed, dir.file("m.gguf") + ": not a model");
    CHECK_THROWS(load_gguf_buffer(b.data(), b.size(), "buf"), ErrorCode::ModelLoadFailed, "buf: not a GGUF file (bad magic)");
    CHECK_THROWS(load_gguf_buffer(b.data(), 3, "buf"), ErrorCode::ModelLoadFailed, "bad magic");
  }
  for (uint32_t version : {0u, 1u, 4u, 1000u}) {
    GgufWriter g = good_writer;
    g.version = version;
    expect_gguf_error(g.bytes(), "unsupported GGUF version " + std::to_string(version));
  }
  { GgufWriter g = good_writer; g.version = 0x03000000; expect_gguf_error(g.bytes(), "big-endian GGUF files are not supported"); }
  expect_gguf_error(Bytes(good.begin(), good.begin() + 6), "truncated at byte 4 while reading the header");
  expect_gguf_error(Bytes(good.begin(), good.begin() + 20), "truncated");

  // Absurd counts fail at once, without allocating for them.
  b = good; patch_u64(b, 8, 1ull << 60);
  expect_gguf_error(b, "tensor count 1152921504606846976 exceeds what the remaining");
  b = good; patch_u64(b, 16, 1ull << 60);
  expect_gguf_error(b, "metadata count 1152921504606846976 exceeds what the remaining");
  b = good; patch_u64(b, 8, 100000);  // plausible for the header, more than the file holds after the metadata
  expect_gguf_error(b, "tensor count 100000 exceeds");
  b = good; patch_u64(b, good_writer.kv_start, 1ull << 62);
  expect_gguf_error(b, "string length 4611686018427387904 at byte 24 runs past the end of the file");

  // Truncated in metadata, tensor infos, data.
  expect_gguf_error(Bytes(good.begin(), good.begin() + good_writer.kv_start + 40), "metadata count 19 exceeds what the remaining 40 bytes");
  expect_gguf_error(Bytes(good.begin(), good.begin() + good_writer.tensor_info_start - 5),
                    "while reading metadata \"tokenizer.ggml.eos_token_id\"");
  expect_gguf_error(Bytes(good.begin(), good.begin() + good_writer.tensor_info_start + 10), "tensor count 12 exceeds");
  expect_gguf_error(Bytes(good.begin(), good.begin() + good_writer.data_start - 30), "while reading tensor info 11 of 12");
  expect_gguf_error(Bytes(good.begin(), good.end() - 1), "truncated: data of tensor output.weight");
  expect_gguf_error(Bytes(good.begin(), good.begin() + good_writer.data_start), "runs past the end of the file");
}

TEST("gguf.metadata_errors") {
  TinyLlama m;
  m.layers = 1;
  const auto hf = tiny_llama_tensors(m);
  const GgufWriter base = tiny_llama_gguf(m, hf);
  Bytes b;
  auto with = [&](auto edit, const std::string& needle) {
    GgufWriter g = base;
    edit(g);
    expect_gguf_error(g.bytes(), needle);
  };
  with([&](GgufWriter& g) { b.clear(); put_u32(b, kU8); put_u64(b, 1ull << 62); g.kv_raw("x.big", kArray, b); },
       "array of 4611686018427387904 u8 runs past the end of the file");
  with([&](GgufWriter& g) { b.clear(); put_u32(b, kU64); put_u64(b, 1ull << 62); g.kv_raw("x.big", kArray, b); },
       "array of 4611686018427387904 u64 runs past the end");
  with([&](GgufWriter& g) { b.clear(); put_u32(b, kString); put_u64(b, 1ull << 61); g.kv_raw("x.big", kArray, b); },
       "array of 2305843009213693952 string runs past the end");
  with([&](GgufWriter& g) { b.clear(); put_u32(b, kString); put_u64(b, 2); put_string(b, "a"); put_u64(b, 1ull << 40); g.kv_raw("x.s", kArray, b); },
       "string length 1099511627776");
  with([&](GgufWriter& g) {
         b.clear();
         for (int i = 0; i < 9; ++i) { put_u32(b, kArray); put_u64(b, 1); }
         put_u32(b, kU8); put_u64(b, 0);
         g.kv_raw("x.deep", kArray, b);
       },
       "arrays nested deeper than 8");
  with([&](GgufWriter& g) { g.kv_raw("x.weird", 13, {0, 0, 0, 0}); }, "unknown metadata value type 13");
  with([&](GgufWriter& g) { b.clear(); put_u32(b, 99); put_u64(b, 0); g.kv_raw("x.weird", kArray, b); }, "unknown metadata value type 99");
  with([&](GgufWriter& g) { g.kv_u32("llama.block_count", 1); }, "duplicate metadata key llama.block_count");
  with([&](GgufWriter& g) { g.remove_kv("general.architecture"); g.kv_string("general.architecture", "gemma"); },
       "unsupported architecture gemma (supported: llama, qwen2, qwen3)");
  with([&](GgufWriter& g) { g.remove_kv("general.architecture"); }, "missing general.architecture");
  with([&](GgufWriter& g) { g.remove_kv("general.architecture"); g.kv_u32("general.architecture", 1); },
       "general.architecture is u32, expected a string");
  with([&](GgufWriter& g) { g.remove_kv("llama.block_count"); }, "missing metadata llama.block_count");
  with([&](GgufWriter& g) { g.remove_kv("llama.block_count"); g.kv_string("llama.block_count", "1"); },
       "metadata llama.block_count is string, expected an integer");
  with([&](GgufWriter& g) { g.remove_kv("llama.embedding_length"); g.kv_i32("llama.embedding_length", -64); },
       "llama.embedding_length = -64 is out of range");
  with([&](GgufWriter& g) { g.remove_kv("llama.attention.head_count"); g.kv_u32("llama.attention.head_count", 0); },
       "llama.attention.head_count is 0");
  with([&](GgufWriter& g) { g.remove_kv("llama.rope.dimension_count"); g.kv_u32("llama.rope.dimension_count", 8); },
       "partial rotary embeddings are not supported");
  with([&](GgufWriter& g) { g.kv_string("llama.rope.scaling.type", "yarn"); }, "unsupported rope scaling type \"yarn\"");
  with([&](GgufWriter& g) { g.kv_u32("general.alignment", 0); }, "general.alignment must be a power of two");
  with([&](GgufWriter& g) { g.kv_u32("general.alignment", 48); }, "general.alignment must be a power of two");
  with([&](GgufWriter& g) {
         g.kv_u32("general.alignment", 64);
         g.tensor("x", kGgmlF32, {2}, Bytes(8));  // written at 32-byte steps: y lands off the 64 grid
         g.tensor("y", kGgmlF32, {2}, Bytes(8));
       },
       "is not a multiple of the alignment 64");
  with([&](GgufWriter& g) { g.remove_kv("tokenizer.ggml.tokens"); g.kv_i32s("tokenizer.ggml.tokens", {1}); },
       "tokenizer.ggml.tokens is not an array of string");
  with([&](GgufWriter& g) { g.remove_kv("tokenizer.ggml.token_type"); g.kv_i32s("tokenizer.ggml.token_type", {1, 1}); },
       "tokenizer.ggml.token_type has 2 entries for 128 tokens");
  with([&](GgufWriter& g) { g.remove_kv("tokenizer.ggml.eos_token_id"); g.kv_u32("tokenizer.ggml.eos_token_id", 1000); },
       "eos_token_id 1000 outside the vocabulary");
}

TEST("gguf.tensor_errors") {
  TinyLlama m;
  m.layers = 1;
  const auto hf = tiny_llama_tensors(m);
  const GgufWriter base = tiny_llama_gguf(m, hf);
  auto with = [&](auto edit, const std::string& needle) {
    GgufWriter g = base;
    edit(g);
    expect_gguf_error(g.bytes(), needle);
  };
  with([](GgufWriter& g) { g.set_tensor_type("blk.0.attn_q.weight", 20); },  // IQ4_NL
       "unsupported tensor type 20 for tensor blk.0.attn_q.weight (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, "
       "Q4_K, Q5_K, Q6_K)");
  with([](GgufWriter& g) { g.set_tensor_type("token_embd.weight", 12); }, "Q4_K tensor token_embd.weight has 64 columns, not a multiple of 256");
  with([](GgufWriter& g) { g.set_tensor_type("output_norm.weight", 2); }, "tensor model.norm.weight is Q4_0; norm weights and biases must be F32, F16 or BF16");
  with([](GgufWriter& g) { g.remove_tensor("blk.0.ffn_up.weight"); }, "missing tensor model.layers.0.mlp.up_proj.weight");
  with([](GgufWriter& g) { g.remove_tensor("output_norm.weight"); }, "missing tensor model.norm.weight");
  with([](GgufWriter& g) { g.tensor("blk.0.ffn_up.weight", kGgmlF32, {4}, Bytes(16)); }, "duplicate tensor blk.0.ffn_up.weight");
  with([](GgufWriter& g) { g.tensor("x", kGgmlQ8_0, {40, 2}, Bytes(68)); }, "Q8_0 tensor x has 40 columns, not a multiple of 32");
  with([](GgufWriter& g) { g.tensor("x", kGgmlF32, {1, 1, 1, 1, 1}, Bytes(4)); }, "tensor x has 5 dimensions (expected 1..4)");
  with([](GgufWriter& g) { g.tensor("x", kGgmlF32, {1ull << 62, 1ull << 62}, Bytes(4)); }, "tensor x has too many elements");
  with([](GgufWriter& g) { g.tensor("x", kGgmlF32, {1ull << 63}, Bytes(4)); }, "tensor x has an absurd dimension");
  with([](GgufWriter& g) { g.tensor("x", kGgmlF32, {1ull << 40}, Bytes(4)); }, "truncated: data of tensor x");
  with([](GgufWriter& g) { g.tensor("rope_freqs.weight", kGgmlF32, {3}, Bytes(12, 0x3f)); }, "rope_freqs has 3 factors, expected head_dim/2 = 8");
  with([](GgufWriter& g) { g.tensor("rope_freqs.weight", kGgmlF16, {8}, Bytes(16)); }, "rope_freqs.weight must be a 1-D F32 tensor");
  // A norm stored quantized: shape [64] as Q8_0 (2 blocks).
  with([](GgufWriter& g) { g.remove_tensor("output_norm.weight"); g.tensor("output_norm.weight", kGgmlQ8_0, {64}, Bytes(68)); },
       "tensor model.norm.weight is Q8_0; norm weights and biases must be F32, F16 or BF16");
  // Metadata disagreeing with the tensors: 4 KV heads claimed, 2 stored.
  TinyLlama claims = m;
  claims.kv_heads = 4;
  expect_gguf_error(tiny_llama_gguf(claims, hf).bytes(),
                    "tensor model.layers.0.self_attn.k_proj.weight has shape [32, 64], expected [64, 64] from config "
                    "(num_key_value_heads=4, head_dim=16, hidden_size=64)");
  // Overlapping data: two tensors claiming the same offset.
  GgufWriter g = base;
  g.tensor("x", kGgmlF32, {8}, Bytes(32));
  Bytes b = g.bytes();
  // x's tensor info ends with its offset, right before the alignment padding; point it at 0 (token_embd's bytes).
  const std::string x_name = "x";
  size_t at = 0;
  for (size_t i = g.tensor_info_start; i + 9 < g.data_start; ++i)
    if (b[i] == 1 && b[i + 1] == 0 && std::memcmp(&b[i + 8], x_name.data(), 1) == 0 && b[i + 9] == 1) at = i;
  CHECK(at != 0);
  patch_u64(b, at + 8 + 1 + 4 + 8 + 4, 0);  // name len, "x", n_dims, ne[0], type → offset
  expect_gguf_error(b, "overlap in the data section");
}

TEST("gguf.every_truncation_fails_cleanly") {
  TinyLlama m;
  m.layers = 1;
  m.hidden = 32;
  m.heads = 2;
  m.kv_heads = 1;
  m.ffn = 32;
  m.vocab = 16;
  const GgufWriter g = tiny_llama_gguf(m, tiny_llama_tensors(m), GgufWeights::Q8_0);
  const Bytes good = g.bytes();
  load_gguf_buffer(good.data(), good.size(), "whole");
  for (size_t n = 0; n < good.size(); n += (n < g.data_start + 64 ? 1 : 61)) {
    bool threw = false;
    try {
      load_gguf_buffer(good.data(), n, "cut");
    } catch (const Error& e) {
      threw = e.code() == ErrorCode::ModelLoadFailed && std::string(e.what()).rfind("cut: ", 0) == 0;
    }
    if (!threw) { ::neoserve::test::fail(__FILE__, __LINE__, "prefix of " + std::to_string(n) + " bytes did not fail cleanly"); break; }
  }
}
