// Writes the seed corpus: small valid inputs from the test writers, so the
// fuzzers start past the magic and the headers. Usage: fuzz_make_seeds <corpus dir>.
#include <cstdio>
#include <cstring>
#include <string>

#include "model_files.h"

using namespace neoserve::test;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s native/fuzz/corpus\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];

  // json: the three documents the loaders read, plus the grammar's corners.
  TinyLlama m;
  write_text(out + "/json/config.json",
             tiny_llama_config(m, R"("rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,)"
                                  R"( "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}, "head_dim": null)"));
  write_text(out + "/json/index.json",
             R"({"metadata": {"total_size": 1024}, "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",)"
             R"( "lm_head.weight": "model-00002-of-00002.safetensors"}})");
  write_text(out + "/json/grammar.json",
             R"([0, -0, 1.5e-3, 9223372036854775807, -9223372036854775808, 18446744073709551616, 1E+2, true, false, null,)"
             R"( "\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "caf)" "\xc3\xa9" R"(", {}, [], {"a": {"b": [{}]}}])");

  // safetensors: every supported dtype, a scalar, an empty tensor, metadata.
  TestTensor a = f32_tensor("a", {2, 3}, 1);
  TestTensor h{"h", "F16", {4}, Bytes(8, 0x3c)};
  TestTensor b{"b", "BF16", {}, Bytes{0x80, 0x3f}};
  TestTensor e{"e", "F32", {0, 5}, {}};
  Bytes st = safetensors_raw(safetensors_header({a, h, b, e}, R"({"format": "pt", "note": "seed"})"),
                             [&] { Bytes d = a.bytes; d.insert(d.end(), h.bytes.begin(), h.bytes.end());
                                   d.insert(d.end(), b.bytes.begin(), b.bytes.end()); return d; }());
  write_file(out + "/safetensors/dtypes.safetensors", st);
  TinyLlama small;
  small.hidden = 8; small.heads = 2; small.kv_heads = 1; small.ffn = 8; small.vocab = 8; small.layers = 1;
  write_file(out + "/safetensors/tiny_llama.safetensors", safetensors_bytes(tiny_llama_tensors(small)));

  // gguf: a complete tiny Llama in Q8_0, one in F16 with the extras
  // (tied head, rope_freqs, q/k/v biases, v2, 64-byte alignment).
  TinyLlama g;
  g.hidden = 32; g.heads = 2; g.kv_heads = 1; g.ffn = 32; g.vocab = 16; g.layers = 1;
  write_file(out + "/gguf/tiny_q8_0.gguf", tiny_llama_gguf(g, tiny_llama_tensors(g), GgufWeights::Q8_0).bytes());
  g.tie = true;
  g.qkv_bias = true;
  GgufWriter w = tiny_llama_gguf(g, tiny_llama_tensors(g), GgufWeights::F16);
  w.version = 2;
  w.alignment = 64;
  w.kv_u32("general.alignment", 64);
  w.kv_u32("tokenizer.ggml.eot_token_id", 3);
  Bytes nested;
  put_u32(nested, kArray); put_u64(nested, 1);
  put_u32(nested, kString); put_u64(nested, 1); put_string(nested, "x");
  w.kv_raw("seed.nested", kArray, nested);
  Bytes f64;
  put_u64(f64, 0x3ff0000000000000ull);
  w.kv_raw("seed.f64", kF64, f64);
  w.kv_bool("seed.bool", true);
  Bytes factors;
  for (int i = 0; i < 8; ++i) { float f = 1.0f + i; uint32_t u; std::memcpy(&u, &f, 4); put_u32(factors, u); }
  w.tensor("rope_freqs.weight", kGgmlF32, {8}, factors);
  write_file(out + "/gguf/tiny_f16_extras.gguf", w.bytes());

  // gguf: one 256-value row of every ggml block type, with random bytes, an
  // fp16 NaN or inf where a block's first scale sits, for the decoders.
  GgufWriter blocks;
  blocks.kv_string("general.architecture", "llama");
  const struct { const char* name; uint32_t type; size_t row_bytes; } kBlockRows[] = {
      {"q4_0", 2, 8 * 18},    {"q4_1", 3, 8 * 20},  {"q5_0", 6, 8 * 22},  {"q5_1", 7, 8 * 24},  {"q8_0", 8, 8 * 34},
      {"q2_k", 10, 84},       {"q3_k", 11, 110},    {"q4_k", 12, 144},    {"q5_k", 13, 176},    {"q6_k", 14, 210},
  };
  uint32_t state = 12345;
  for (const auto& b : kBlockRows) {
    Bytes row(b.row_bytes);
    for (uint8_t& x : row) x = static_cast<uint8_t>((state = state * 1664525u + 1013904223u) >> 24);
    blocks.tensor(std::string(b.name) + ".weight", b.type, {256}, row);
    Bytes nan_row = row;
    const size_t scale_at = b.type == 10 ? 80 : b.type == 11 ? 108 : b.type == 14 ? 208 : 0;
    nan_row[scale_at] = 0x00, nan_row[scale_at + 1] = (b.type % 2) ? 0x7e : 0x7c;  // NaN or inf
    blocks.tensor(std::string(b.name) + ".nonfinite", b.type, {256}, nan_row);
  }
  write_file(out + "/gguf/block_types.gguf", blocks.bytes());
  std::printf("seeds written under %s\n", out.c_str());
  return 0;
}
