// The CPU engine: a Llama forward over the scheduler's ragged batches, with a
// paged KV cache in host memory and kernels for AVX-512 / AVX2 / portable x86.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/model/model_weights.h"
#include "core/options.h"
#include "core/provider.h"
#include "cpu_weights.h"
#include "kernels/matmul.h"
#include "thread_pool.h"

namespace neoserve::cpu {

// Reads threads, precision, kv_block_size and kv_memory_bytes (0 = 8
// sequences of max_position_embeddings, capped at 1 GiB).
using CpuProviderOptions = ProviderOptions;

// step() is not reentrant (it reuses its scratch buffers): one caller at a
// time, as the scheduler's loop is.
class CpuProvider : public Provider {
 public:
  // Throws InvalidRequest for a bad option, ModelLoadFailed for unusable weights.
  CpuProvider(std::shared_ptr<const ModelWeights> weights, const CpuProviderOptions& options = {});
  ~CpuProvider() override;

  ProviderInfo info() const override;
  KvGeometry kv() const override;
  void step(std::span<const SeqStep> batch, LogitsOut& out) override;
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override { pool_.parallel_for(n, fn, 1); }

 private:
  struct TokenRef {  // where a token of the flattened batch belongs
    int32_t seq;     // index into the batch
    int32_t pos;     // absolute position
  };

  WorkingMemory plan_memory(const CpuProviderOptions& options) const;
  void validate(std::span<const SeqStep> batch) const;
  void ensure_rope(int32_t positions);
  void ensure_scratch(int64_t tokens);
  void embed(int64_t T);
  void attention_block(const LayerWeights& L, int layer, std::span<const SeqStep> batch, int64_t T);
  void mlp_block(const LayerWeights& L, int64_t T);
  void logits(std::span<const SeqStep> batch, LogitsOut& out);
  // x (T x cols) through each job's matrix, quantizing x first if a job is int8.
  void project(const float* x, int64_t T, int64_t cols, const MatmulJob* jobs, int njobs);
  void rmsnorm(const float* x, const std::vector<float>& w, float* out, int64_t T);
  void head_rmsnorm(float* v, int heads, const std::vector<float>& w) const;
  void attend(int64_t token, int kvh, int layer, std::span<const SeqStep> batch, float* scratch);
  static constexpr int32_t kAttentionChunk = 256;
  int32_t attention_chunk() const;
  enum class KvPart : int { Key = 0, Value = 1 };  // the halves of a layer's slice of a KV block
  // The block's rows of one KV head: block_size_ x head_dim_ elements of kv_format_.
  uint8_t* kv_head(int32_t block, int layer, KvPart part, int kvh) const;
  void store_kv(const float* src, uint8_t* dst) const;  // one position's head_dim_ values, as kv_format_

  std::shared_ptr<const ModelWeights> weights_;  // held: w_ may view its mapped tensors
  LlamaConfig cfg_;
  int32_t head_dim_, n_heads_, n_kv_heads_, q_dim_, kv_dim_;
  ThreadPool pool_;
  const KernelSet& kernels_;
  std::unique_ptr<CpuWeights> w_;

  // Paged KV cache, fp32 or fp16 (kvCacheDtype): [block][layer][K|V][kv_head][position in block][head_dim].
  int32_t block_size_;
  int32_t num_blocks_;
  WFormat kv_format_ = WFormat::F32;
  size_t elements_per_block_, bytes_per_block_;
  std::unique_ptr<uint8_t, void (*)(void*)> kv_{nullptr, nullptr};
  WorkingMemory memory_;

  std::vector<float> inv_freq_, rope_cos_, rope_sin_;  // [position][head_dim/2]
  int32_t rope_positions_ = 0;

  // Scratch, grown to the largest step seen and reused.
  std::vector<int32_t> tokens_;
  std::vector<TokenRef> refs_;
  std::vector<float> x_, xn_, q_, k_, v_, att_, proj_, gate_, up_, last_;
  QActs xq_;
  int64_t scratch_tokens_ = 0;
};

}  // namespace neoserve::cpu
