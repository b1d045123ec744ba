// Writers for small checkpoint files, so loader tests (and provider tests)
// build exactly the file they need — valid, or corrupted on purpose — instead
// of shipping binaries. Everything is little-endian, as the formats are.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/model/llama_config.h"

namespace neoserve::test {

using Bytes = std::vector<uint8_t>;

// A fresh directory under /tmp for one test, removed (recursively) when it goes out of scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const Bytes& bytes);
void write_text(const std::string& path, const std::string& text);
Bytes read_file(const std::string& path);

// A tensor as a test writes it: Hugging Face names, outermost-first shape,
// dtype as safetensors spells it ("F32", "F16", "BF16", or anything to test rejection).
struct TestTensor {
  std::string name;
  std::string dtype = "F32";
  std::vector<int64_t> shape;
  Bytes bytes;
};

// Deterministic F32 values, distinct per (seed, index), small enough for any dtype.
TestTensor f32_tensor(const std::string& name, std::vector<int64_t> shape, uint32_t seed);
std::vector<float> as_floats(const Bytes& bytes);
Bytes f32_to_f16_bytes(const Bytes& f32);

// --- safetensors ----------------------------------------------------------

// The header JSON the tensors get when laid out back to back, in order.
std::string safetensors_header(const std::vector<TestTensor>& tensors, const std::string& metadata_json = "");
// 8-byte length + header + data. `header_override` replaces the computed header verbatim.
Bytes safetensors_bytes(const std::vector<TestTensor>& tensors, const std::string& header_override = "");
Bytes safetensors_raw(const std::string& header_json, const Bytes& data);

// --- a tiny Llama ------------------------------------------------------------

struct TinyLlama {
  int hidden = 64, ffn = 96, layers = 2, heads = 4, kv_heads = 2, vocab = 128;
  int head_dim() const { return hidden / heads; }
  bool tie = false;            // no lm_head tensor
  bool qkv_bias = false;       // Qwen2-style attention biases
  std::string model_type = "llama";
};

// Checks the config a loader read for the default TinyLlama (either file format):
// sizes, eps 1e-5, theta 10000, untied, bos 1, eos {2}.
void check_default_tiny_llama_config(const LlamaConfig& c);

// Every tensor of the model, HF names and layout, F32.
std::vector<TestTensor> tiny_llama_tensors(const TinyLlama& m);
// config.json text; `extra` is spliced in as additional members (",\"k\": v" form without the leading comma).
std::string tiny_llama_config(const TinyLlama& m, const std::string& extra = "");
// A Hugging Face directory: config.json plus one model.safetensors, or `shards`
// files with model.safetensors.index.json.
void write_hf_dir(const std::string& dir, const TinyLlama& m, const std::vector<TestTensor>& tensors, int shards = 1,
                  const std::string& config_extra = "");

// --- GGUF ---------------------------------------------------------------------

enum GgufValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

class GgufWriter {
 public:
  char magic[4] = {'G', 'G', 'U', 'F'};
  uint32_t version = 3;
  uint32_t alignment = 32;  // layout alignment; written as general.alignment only via kv_u32

  void kv_u32(const std::string& key, uint32_t v);
  void kv_i32(const std::string& key, int32_t v);
  void kv_u64(const std::string& key, uint64_t v);
  void kv_f32(const std::string& key, float v);
  void kv_bool(const std::string& key, bool v);
  void kv_string(const std::string& key, const std::string& v);
  void kv_strings(const std::string& key, const std::vector<std::string>& v);
  void kv_i32s(const std::string& key, const std::vector<int32_t>& v);
  // Any value: its type tag and encoded bytes (for arrays: element type, count, elements).
  void kv_raw(const std::string& key, uint32_t type, const Bytes& encoded);
  void remove_kv(const std::string& key);
  // Replaces a tensor's ggml type (bytes unchanged), for rejection tests.
  void set_tensor_type(const std::string& name, uint32_t ggml_type);
  void remove_tensor(const std::string& name);

  // ne is ggml order (innermost first); bytes are written as given.
  void tensor(const std::string& name, uint32_t ggml_type, std::vector<uint64_t> ne, Bytes bytes);

  Bytes bytes() const;
  // Where the sections start in bytes() (valid after the call), for corruption tests.
  mutable size_t kv_start = 0, tensor_info_start = 0, data_start = 0;

 private:
  struct Kv { std::string key; uint32_t type; Bytes encoded; };
  struct Info { std::string name; uint32_t type; std::vector<uint64_t> ne; Bytes bytes; };
  std::vector<Kv> kv_;
  std::vector<Info> tensors_;
};

// Little-endian encoders for building raw values.
void put_u32(Bytes& b, uint32_t v);
void put_u64(Bytes& b, uint64_t v);
void put_string(Bytes& b, const std::string& s);

constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ8_0 = 8, kGgmlBF16 = 30;

// llama.cpp's convert_hf_to_gguf.py permute(), written as its numpy steps:
// reshape(n_head, 2, rows/n_head/2, row) → swapaxes(1, 2) → reshape back.
Bytes permute_rows_like_llama_cpp(const Bytes& rows_bytes, int64_t rows, int n_head);
// Q8_0 quantization of F32 rows (blocks of 32: fp16 scale, 32 int8).
Bytes quantize_q8_0(const Bytes& f32);

enum class GgufWeights { F32, F16, Q8_0 };
// A GGUF of the tiny Llama as llama.cpp's converter would write it: llama.*
// keys, tokenizer, renamed tensors, reversed shapes, Q/K permuted. Norms stay F32.
GgufWriter tiny_llama_gguf(const TinyLlama& m, const std::vector<TestTensor>& hf, GgufWeights weights = GgufWeights::F32);

}  // namespace neoserve::test
