// A loaded checkpoint: config, tensors by canonical name, and the mappings
// that keep the tensors' bytes alive.
#pragma once
#include <map>
#include <utility>
#include <memory>
#include <string>
#include <vector>

#include "llama_config.h"
#include "mapped_file.h"
#include "tensor.h"

namespace neoserve {

// TensorRtEngine: a neoserve.json engine directory; its ModelWeights carry the
// config only (the weights live in the engine).
enum class ModelFormat { HuggingFace, GGUF, TensorRtEngine };
inline const char* model_format_name(ModelFormat f) {
  return f == ModelFormat::GGUF ? "gguf" : f == ModelFormat::TensorRtEngine ? "tensorrt" : "huggingface";
}

// The tokenizer a GGUF carries (tokenizer.ggml.*), for callers that have no tokenizer.json.
struct GgufTokenizer {
  std::string model;  // "gpt2", "llama", ...
  std::string pre;    // tokenizer.ggml.pre
  std::vector<std::string> tokens;
  std::vector<std::string> merges;
  std::vector<int32_t> token_types;
  int32_t bos_id = -1;        // tokenizer.ggml.bos_token_id
  int32_t eos_id = -1;        // tokenizer.ggml.eos_token_id
  int32_t eot_id = -1;        // tokenizer.ggml.eot_token_id
  int8_t add_bos = -1;        // tokenizer.ggml.add_bos_token: -1 absent, 0 false, 1 true
  std::string chat_template;  // tokenizer.chat_template
};

struct ModelWeights {
  std::string source;  // the path given to load_model
  ModelFormat format = ModelFormat::HuggingFace;
  LlamaConfig config;
  std::map<std::string, Tensor> tensors;
  GgufTokenizer gguf_tokenizer;  // empty unless format == GGUF

  std::vector<std::unique_ptr<MappedFile>> files;       // keep the mappings alive
  struct OwnedBuffer {
    std::unique_ptr<uint8_t[]> bytes;
    size_t size = 0;
    bool releasable = false;  // a copy release() may discard once a provider has its own (GGUF Q/K un-permuted)
  };
  std::vector<OwnedBuffer> owned_buffers;  // tensors rewritten or made at load
  // File bytes a rewritten tensor no longer reads (GGUF Q/K before un-permuting): released once the file is attached.
  std::vector<std::pair<const uint8_t*, size_t>> superseded;
  // LoadDepth::FileOrder: tensors whose rows are as the file has them, each rotary pair of a head interleaved
  // (GGUF Q/K weights and biases), with the (heads, head_dim) unpermute_rows_into() takes.
  std::map<std::string, std::pair<int, int>> interleaved_rows;

  // Throws ModelLoadFailed "<source>: missing tensor <name>" / mis-shaped tensor.
  const Tensor& get(const std::string& name) const;
  const Tensor* find(const std::string& name) const;

  // A provider that converted `t` into its own copy drops the tensor's pages
  // from this process's resident set. Only file-backed bytes are released (a
  // later read faults them back in from the file); owned buffers are kept.
  void release_pages(const Tensor& t) const { release(t.data, t.nbytes); }
  // The same for any byte range (whole pages inside it) of a mapped file or
  // of a releasable owned buffer, whose released bytes are gone (they read as
  // zeros): only a provider that has made its own copy releases them.
  void release(const uint8_t* p, size_t n) const;
};

// Copies `t`'s rows into `dst` (t.nbytes) in Hugging Face order, undoing
// convert_hf_to_gguf.py's permute(w, n_head): GGUF row h*hd + 2j + i holds HF
// row h*hd + i*hd/2 + j. Rows move whole, which keeps quantized blocks intact.
void unpermute_rows_into(const Tensor& t, int n_head, int head_dim, uint8_t* dst);

// Canonical tensor names of a Llama layer.
std::string layer_tensor_name(int layer, const char* suffix);  // ("self_attn.q_proj.weight") -> "model.layers.N.self_attn.q_proj.weight"

// Loads a Hugging Face directory (config.json + model.safetensors or sharded
// with model.safetensors.index.json) or a .gguf file, validates every tensor a
// Llama forward needs against the config, and returns mapped weights.
// Throws Error(ModelLoadFailed, "<file>: <what>") on any malformed input.
// LoadDepth::FileOrder makes every check but reads no tensor bytes: GGUF Q/K
// rows stay in the file's order, and ModelWeights::interleaved_rows says which
// (for a caller that only describes the model, or a provider that un-permutes
// what it reads, or never reads them: the CPU engine's weight cache).
enum class LoadDepth { Weights, FileOrder };
std::unique_ptr<ModelWeights> load_model(const std::string& path, LoadDepth depth = LoadDepth::Weights);

// The tokenizer metadata of a GGUF file alone (header only, no tensors checked),
// for a tokenizer built away from the engine. Throws ModelLoadFailed naming the path.
GgufTokenizer read_gguf_tokenizer(const std::string& path);

// One tensor of a GGUF file, by its name there ("blk.0.attn_q.weight"), as
// fp32 in the file's row order (no un-permuting): what inspection tools and
// the dequantization tests read. Throws ModelLoadFailed naming the path for a
// missing tensor or an unsupported type, OutOfMemory past kMaxReadElements.
struct GgufTensorValues {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // outermost first
  std::vector<float> values;
};
inline constexpr int64_t kMaxReadElements = int64_t{1} << 30;
GgufTensorValues read_gguf_tensor(const std::string& path, const std::string& name);

}  // namespace neoserve
