// Internal seams of load_model (declared in model_weights.h): the per-format
// loaders and the check that a checkpoint holds a complete Llama.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "model_weights.h"

namespace neoserve {

// Tensor name → the file it was read from, so errors name the right shard.
using TensorFiles = std::map<std::string, std::string>;

// Fills in what the source left open (vocab_size from the embedding rows),
// validates the config (errors name `config_source`), then checks that every
// tensor a Llama forward needs exists with the shape the config implies, a
// usable dtype and a byte size matching its shape.
void finish_llama_weights(ModelWeights& w, const TensorFiles& files, const std::string& config_source);

// A Hugging Face directory: config.json + model.safetensors or sharded with
// model.safetensors.index.json. Fills w (format, config, tensors, files).
void load_hf_directory(const std::string& dir, ModelWeights& w, TensorFiles& files);

// A GGUF image in memory (a mapping, or a fuzzer's buffer): config, tensors
// under Hugging Face names, tokenizer; finished and checked as above, with Q/K
// rows un-permuted into w.owned_buffers (LoadDepth::Weights) or left in the
// file's order and listed in w.interleaved_rows (FileOrder). Tensors point
// into `bytes`, which must outlive the result.
std::unique_ptr<ModelWeights> load_gguf_buffer(const uint8_t* bytes, size_t size, const std::string& name,
                                               LoadDepth depth = LoadDepth::Weights);

}  // namespace neoserve
