// config.json of a Hugging Face Llama-family checkpoint → LlamaConfig.
#pragma once
#include <string>
#include <string_view>

#include "llama_config.h"

namespace neoserve {

// Reads the Llama-family fields (llama, mistral, qwen2 share them), applying
// transformers' defaults where a field is absent. Rejects other model types
// and rope scalings we cannot reproduce. vocab_size stays 0 when absent (the
// loader takes it from the embedding). Does not call validate().
// Throws Error(ModelLoadFailed, "<source>: <what>").
LlamaConfig parse_hf_config(std::string_view json_text, const std::string& source);

// Adds the end-of-sequence ids of `dir`/generation_config.json, when there is
// one, to config.eos_token_ids: generation stops on either file's ids, as
// transformers' generate() does. Throws ModelLoadFailed naming the file.
void add_generation_config_eos(const std::string& dir, LlamaConfig& config);

}  // namespace neoserve
