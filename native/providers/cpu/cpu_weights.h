// The model's tensors as the CPU kernels run them: views of the mapped
// weights when their dtype runs as is, or buffers converted once at load
// ("f32": widen everything to fp32; "int8": quantize float weights to int8
// with a scale per 32-block, keeping GGUF Q8_0 and Q5_0 values as they
// are). Where the kernels run int8 panels, GGUF's 4-bit types (Q4_0, Q4_1,
// Q4_K) become 4-bit panels; its other block types (Q6_K, ...) run as int8
// requantized from their exact values, or as fp32 with "f32".
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/model/model_weights.h"
#include "kernels/matmul.h"
#include "weight_buffer.h"
#include "weight_cache.h"

namespace neoserve::cpu {

class ThreadPool;

struct LayerWeights {
  std::vector<float> attn_norm, mlp_norm;      // fp32 copies (tiny)
  std::vector<float> q_bias, k_bias, v_bias;   // empty unless the checkpoint has them (Qwen2)
  std::vector<float> q_norm, k_norm;           // head_dim each; empty unless the model has them (Qwen3)
  WMat q, k, v, o, gate, up, down;
};

struct CpuWeights {
  std::string precision;  // what info() reports: "f32", "f16", "bf16", "int8", "q8_0"
  WMat embed;             // vocab x hidden (looked up row by row)
  WMat lm_head;           // vocab x hidden (== embed when tied)
  std::vector<float> final_norm;
  std::vector<LayerWeights> layers;

  std::vector<WeightBytes> owned;  // converted tensors
  std::vector<std::unique_ptr<float[]>> owned_scales;
  std::unique_ptr<MappedFile> cache_file;  // converted tensors found in the weight cache point into it
  std::string cache_status = "off";        // WeightCache::status()
};

// The bytes prepare_weights' result will hold resident for this precision,
// known before anything is converted.
size_t planned_weight_bytes(const ModelWeights& model, const std::string& precision, const KernelSet& kernels);

// precision: "auto" | "f32" | "int8". Int8 matrices (quantized here, or GGUF
// Q8_0) and fp32 ones are laid out as the kernel set runs them
// (KernelSet::int8_layout, f32_layout). With a cache directory, converted
// matrices come from the weight cache when it holds them, and a new cache
// file is written when it did not (weight_cache.h). Throws ModelLoadFailed
// for a tensor of the wrong shape or an unsupported dtype.
std::unique_ptr<CpuWeights> prepare_weights(const ModelWeights& model, const std::string& precision, const KernelSet& kernels,
                                            ThreadPool& pool, const std::string& cache_dir = "", bool full_cache_check = false);

}  // namespace neoserve::cpu
