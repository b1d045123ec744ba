// The Llama forward on the CPU, read top to bottom in step():
//   embed -> per layer [RMSNorm, Q/K/V, RoPE, KV write, attention, O, residual,
//   RMSNorm, SwiGLU MLP, residual] -> final RMSNorm -> lm_head on the last
//   token of each step that wants logits.
// Every token of the step goes through each matmul together (one pass over
// the weights per step); attention is per (token, KV head) over that token's
// own sequence, through its block table. Nothing in a token's arithmetic
// depends on the other tokens or the thread count (see kernels/matmul.h), so
// results are batch invariant.
#include "cpu_provider.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/model/half.h"

namespace neoserve::cpu {

CpuProvider::CpuProvider(std::shared_ptr<const ModelWeights> weights, const CpuProviderOptions& options)
    : weights_(std::move(weights)),
      cfg_(weights_ ? weights_->config : LlamaConfig{}),
      pool_((neoserve::validate(LoadOptions{options, {}}), options.threads)),
      kernels_(best_kernels()) {
  if (!weights_) throw_invalid("CpuProvider needs weights");
  if (cfg_.num_attention_heads <= 0 || cfg_.num_key_value_heads <= 0 ||
      cfg_.num_attention_heads % cfg_.num_key_value_heads != 0 || cfg_.head_dim <= 0 || cfg_.head_dim % 2 != 0 ||
      cfg_.hidden_size <= 0 || cfg_.vocab_size <= 0 || cfg_.max_position_embeddings <= 0)
    throw_load_error(weights_->source, "config does not describe a Llama model the CPU provider can run");
  head_dim_ = cfg_.head_dim;
  n_heads_ = cfg_.num_attention_heads;
  n_kv_heads_ = cfg_.num_key_value_heads;
  q_dim_ = n_heads_ * head_dim_;
  kv_dim_ = n_kv_heads_ * head_dim_;

  inv_freq_ = rope_inv_freq(cfg_);
  if (static_cast<int32_t>(inv_freq_.size()) != head_dim_ / 2)
    throw_load_error(weights_->source, "rope_inv_freq returned " + std::to_string(inv_freq_.size()) + " frequencies");

  // The KV cache's size, then the whole working memory, checked before anything is allocated.
  block_size_ = options.kv_block_size;
  kv_format_ = options.kv_cache_dtype == "f16" ? WFormat::F16 : WFormat::F32;
  elements_per_block_ = static_cast<size_t>(cfg_.num_hidden_layers) * 2 * kv_dim_ * block_size_;
  bytes_per_block_ = elements_per_block_ * (kv_format_ == WFormat::F16 ? 2 : 4);
  size_t budget = options.kv_memory_bytes;
  if (budget == 0) {
    const size_t blocks_per_seq = (cfg_.max_position_embeddings + block_size_ - 1) / block_size_;
    budget = std::min<size_t>(size_t{1} << 30, 8 * blocks_per_seq * bytes_per_block_);
  }
  num_blocks_ = static_cast<int32_t>(std::min<size_t>(budget / bytes_per_block_, INT32_MAX));
  if (num_blocks_ < 1) throw_invalid("kvMemoryBytes is smaller than one KV block (" + std::to_string(bytes_per_block_) + " bytes)");
  memory_ = plan_memory(options);
  // A mapping or calloc only reserves address space: a model larger than the machine would load, then fail page by page.
  check_working_memory(memory_, 1, 1);

  w_ = prepare_weights(*weights_, options.precision, kernels_, pool_, options.weight_cache, options.weight_cache_check == "full");
  // calloc'd: untouched blocks cost no memory.
  kv_ = {static_cast<uint8_t*>(std::calloc(static_cast<size_t>(num_blocks_), bytes_per_block_)), std::free};
  if (!kv_) throw Error(ErrorCode::OutOfMemory, "out of memory: cannot allocate " + std::to_string(memory_.kv_bytes) + " bytes of KV cache");
}

// What this model holds and may grow to; the scheduler adds its step size (check_working_memory).
WorkingMemory CpuProvider::plan_memory(const CpuProviderOptions& options) const {
  const size_t H = static_cast<size_t>(cfg_.hidden_size), F = static_cast<size_t>(cfg_.intermediate_size);
  const size_t widest = std::max({H, F, static_cast<size_t>(q_dim_)});
  const size_t positions = std::min<size_t>(cfg_.max_position_embeddings, static_cast<size_t>(num_blocks_) * block_size_);
  const size_t group = static_cast<size_t>(n_heads_ / n_kv_heads_);
  WorkingMemory m;
  m.weights_bytes = planned_weight_bytes(*weights_, options.precision, kernels_);
  m.kv_bytes = static_cast<size_t>(num_blocks_) * bytes_per_block_;
  m.fixed_scratch_bytes = positions * static_cast<size_t>(head_dim_) * sizeof(float) +  // RoPE cos and sin
                          pool_.size() * group * (static_cast<size_t>(attention_chunk()) + 2) * sizeof(float) +  // attention, per thread
                          (kv_format_ == WFormat::F16 ? pool_.size() * static_cast<size_t>(block_size_) * head_dim_ * sizeof(float) : 0) +  // widened values
                          (kernels_.bf16_layout == WFormat::BF16P16 ? pool_.size() * bf16_activation_bytes(static_cast<int64_t>(widest)) : 0);
  // x, xn, proj, q, att, k, v, gate, up, and the int8 activations (a byte, a block scale and a block sum per value).
  m.scratch_bytes_per_token = (3 * H + 2 * static_cast<size_t>(q_dim_) + 2 * static_cast<size_t>(kv_dim_) + 2 * F) * sizeof(float) +
                              widest + widest / kQuantBlock * (sizeof(float) + sizeof(int32_t));
  m.scratch_bytes_per_logits_row = (static_cast<size_t>(cfg_.vocab_size) + H) * sizeof(float);
  m.limit_bytes = options.memory_limit_bytes;
  return m;
}

CpuProvider::~CpuProvider() = default;

ProviderInfo CpuProvider::info() const {
  ProviderInfo i;
  i.name = "cpu";
  i.device = std::string("cpu (") + kernels_.isa + ", " + std::to_string(pool_.size()) + " threads)";
  i.precision = w_->precision;
  i.vocab_size = cfg_.vocab_size;
  i.max_context = cfg_.max_position_embeddings;
  i.eos_token_ids = cfg_.eos_token_ids;
  i.memory = memory_;
  i.weight_cache = w_->cache_status;
  return i;
}

KvGeometry CpuProvider::kv() const { return {block_size_, bytes_per_block_, num_blocks_}; }

uint8_t* CpuProvider::kv_head(int32_t block, int layer, KvPart part, int kvh) const {
  const size_t head_bytes = bytes_per_block_ / elements_per_block_ * static_cast<size_t>(block_size_) * head_dim_;
  const size_t half = static_cast<size_t>(layer) * 2 + static_cast<size_t>(part);
  return kv_.get() + block * bytes_per_block_ + (half * n_kv_heads_ + kvh) * head_bytes;
}

void CpuProvider::store_kv(const float* src, uint8_t* dst) const {
  if (kv_format_ == WFormat::F32) {
    std::memcpy(dst, src, static_cast<size_t>(head_dim_) * 4);
    return;
  }
  // Saturated to fp16's largest finite value: an overflow to inf would turn scores into NaN.
  // (Rows start on 2-byte boundaries: blocks and rows are whole numbers of fp16 values.)
  kernels_.narrow_f16(src, reinterpret_cast<uint16_t*>(dst), head_dim_);
}

// --- one step ------------------------------------------------------------------------

void CpuProvider::step(std::span<const SeqStep> batch, LogitsOut& out) {
  validate(batch);
  out.vocab = cfg_.vocab_size;
  out.rows = 0;
  tokens_.clear();
  refs_.clear();
  int32_t max_end = 0;
  for (size_t s = 0; s < batch.size(); ++s) {
    const SeqStep& st = batch[s];
    for (size_t j = 0; j < st.tokens.size(); ++j) {
      tokens_.push_back(st.tokens[j]);
      refs_.push_back({static_cast<int32_t>(s), st.pos + static_cast<int32_t>(j)});
    }
    max_end = std::max(max_end, st.pos + static_cast<int32_t>(st.tokens.size()));
  }
  const int64_t T = static_cast<int64_t>(tokens_.size());
  if (T == 0) {
    out.data.clear();
    return;
  }
  ensure_rope(max_end);
  ensure_scratch(T);

  embed(T);
  for (int l = 0; l < cfg_.num_hidden_layers; ++l) {
    attention_block(w_->layers[l], l, batch, T);
    mlp_block(w_->layers[l], T);
  }
  logits(batch, out);
}

void CpuProvider::validate(std::span<const SeqStep> batch) const {
  check_steps(batch, {cfg_.vocab_size, cfg_.max_position_embeddings, block_size_, num_blocks_});
}

void CpuProvider::ensure_rope(int32_t positions) {
  if (positions <= rope_positions_) return;
  const int32_t n = std::min(cfg_.max_position_embeddings, std::max(positions, 2 * rope_positions_));
  const int32_t half = head_dim_ / 2;
  rope_cos_.resize(static_cast<size_t>(n) * half);
  rope_sin_.resize(static_cast<size_t>(n) * half);
  for (int32_t p = rope_positions_; p < n; ++p)
    for (int32_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv_freq_[i];  // fp32 product, as Hugging Face computes it
      rope_cos_[static_cast<size_t>(p) * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      rope_sin_[static_cast<size_t>(p) * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  rope_positions_ = n;
}

void CpuProvider::ensure_scratch(int64_t T) {
  if (T <= scratch_tokens_) return;
  const int64_t H = cfg_.hidden_size, F = cfg_.intermediate_size;
  x_.resize(T * H);
  xn_.resize(T * H);
  q_.resize(T * q_dim_);
  k_.resize(T * kv_dim_);
  v_.resize(T * kv_dim_);
  att_.resize(T * q_dim_);
  proj_.resize(T * H);
  gate_.resize(T * F);
  up_.resize(T * F);
  scratch_tokens_ = T;
}

// --- the pieces of the forward ------------------------------------------------------------

void CpuProvider::embed(int64_t T) {
  const int64_t H = cfg_.hidden_size;
  pool_.parallel_for(T, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) dequantize_row(w_->embed, tokens_[t], x_.data() + t * H);
  });
}

// x * rsqrt(mean(x^2) + eps) * w, per token, in fp32.
void CpuProvider::rmsnorm(const float* x, const std::vector<float>& w, float* out, int64_t T) {
  const int64_t H = cfg_.hidden_size;
  const float eps = cfg_.rms_norm_eps;
  pool_.parallel_for(T, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const float* xt = x + t * H;
      float ss = 0.0f;
      for (int64_t i = 0; i < H; ++i) ss += xt[i] * xt[i];
      const float r = 1.0f / std::sqrt(ss / static_cast<float>(H) + eps);
      for (int64_t i = 0; i < H; ++i) out[t * H + i] = (xt[i] * r) * w[i];
    }
  });
}

void CpuProvider::project(const float* x, int64_t T, int64_t cols, const MatmulJob* jobs, int njobs) {
  bool integer = false;
  for (int j = 0; j < njobs; ++j) integer |= jobs[j].w->integer();
  if (integer) {
    xq_.resize(T, cols);
    pool_.parallel_for(T, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) xq_.quantize_token(kernels_, t, x + t * cols);
    });
  }
  matmul(pool_, kernels_, x, integer ? &xq_ : nullptr, T, jobs, njobs);
}

static void add_bias(float* y, const std::vector<float>& bias, int64_t T) {
  if (bias.empty()) return;
  const int64_t n = static_cast<int64_t>(bias.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < n; ++i) y[t * n + i] += bias[i];
}

// Qwen3's q/k norm: an RMSNorm over each head's head_dim values (no-op without weights).
void CpuProvider::head_rmsnorm(float* v, int heads, const std::vector<float>& w) const {
  if (w.empty()) return;
  const float eps = cfg_.rms_norm_eps;
  for (int h = 0; h < heads; ++h, v += head_dim_) {
    float ss = 0.0f;
    for (int32_t i = 0; i < head_dim_; ++i) ss += v[i] * v[i];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(head_dim_) + eps);
    for (int32_t i = 0; i < head_dim_; ++i) v[i] = (v[i] * r) * w[i];
  }
}

void CpuProvider::attention_block(const LayerWeights& L, int layer, std::span<const SeqStep> batch, int64_t T) {
  const int64_t H = cfg_.hidden_size;
  rmsnorm(x_.data(), L.attn_norm, xn_.data(), T);
  const MatmulJob qkv[3] = {{&L.q, q_.data()}, {&L.k, k_.data()}, {&L.v, v_.data()}};
  project(xn_.data(), T, H, qkv, 3);
  add_bias(q_.data(), L.q_bias, T);
  add_bias(k_.data(), L.k_bias, T);
  add_bias(v_.data(), L.v_bias, T);

  // RoPE (Hugging Face rotate_half: pairs (i, i + head_dim/2)) on q and k, then
  // k and v into the token's slot of its sequence's KV blocks.
  const int32_t half = head_dim_ / 2;
  pool_.parallel_for(T, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const TokenRef ref = refs_[t];
      const float* cs = rope_cos_.data() + static_cast<size_t>(ref.pos) * half;
      const float* sn = rope_sin_.data() + static_cast<size_t>(ref.pos) * half;
      auto rotate = [&](float* v, int heads) {
        for (int h = 0; h < heads; ++h, v += head_dim_)
          for (int32_t i = 0; i < half; ++i) {
            const float a = v[i], c = v[i + half];
            v[i] = a * cs[i] - c * sn[i];
            v[i + half] = c * cs[i] + a * sn[i];
          }
      };
      head_rmsnorm(q_.data() + t * q_dim_, n_heads_, L.q_norm);
      head_rmsnorm(k_.data() + t * kv_dim_, n_kv_heads_, L.k_norm);
      rotate(q_.data() + t * q_dim_, n_heads_);
      rotate(k_.data() + t * kv_dim_, n_kv_heads_);
      const int32_t block = batch[ref.seq].kv_blocks[ref.pos / block_size_];
      const int32_t slot = ref.pos % block_size_;
      const size_t row_bytes = kv_format_ == WFormat::F16 ? 2 * head_dim_ : 4 * head_dim_;
      for (int h = 0; h < n_kv_heads_; ++h) {
        store_kv(k_.data() + t * kv_dim_ + h * head_dim_, kv_head(block, layer, KvPart::Key, h) + slot * row_bytes);
        store_kv(v_.data() + t * kv_dim_ + h * head_dim_, kv_head(block, layer, KvPart::Value, h) + slot * row_bytes);
      }
    }
  });

  // Attention per (token, KV head); later tokens cost more, so threads take small chunks.
  // Scratch is one chunk of scores per query head, whatever the context.
  const size_t group = static_cast<size_t>(n_heads_ / n_kv_heads_);
  const size_t scratch_floats = group * (static_cast<size_t>(attention_chunk()) + 2);
  pool_.parallel_for(T * n_kv_heads_, [&](int64_t b, int64_t e) {
    thread_local std::vector<float> scratch;
    if (scratch.size() < scratch_floats) scratch.resize(scratch_floats);
    for (int64_t i = b; i < e; ++i) attend(i / n_kv_heads_, static_cast<int>(i % n_kv_heads_), layer, batch, scratch.data());
  }, 2);

  const MatmulJob o[1] = {{&L.o, proj_.data()}};
  project(att_.data(), T, q_dim_, o, 1);
  for (int64_t i = 0; i < T * H; ++i) x_[i] += proj_[i];
}

// Causal softmax attention of one token's query heads that share KV head
// `kvh` (a GQA group, consecutive in q) over its sequence's positions [0, pos],
// reading K/V through the block table a chunk of whole blocks at a time. The
// softmax is online (as flash attention computes it): each chunk's scores are
// exponentiated against the running maximum, and what was accumulated before
// is rescaled when the maximum grows, so scratch holds one chunk of scores per
// head instead of the whole sequence's. Scores: the group's queries times a
// block of K rows, a small matmul through the same kernel (and so the same
// per-element arithmetic) as the projections.
void CpuProvider::attend(int64_t t, int kvh, int layer, std::span<const SeqStep> batch, float* scratch) {
  const TokenRef ref = refs_[t];
  const SeqStep& seq = batch[ref.seq];
  const int group = n_heads_ / n_kv_heads_;
  const float* q = q_.data() + t * q_dim_ + static_cast<int64_t>(kvh) * group * head_dim_;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));
  const int32_t n = ref.pos + 1;
  const int32_t chunk = attention_chunk();
  float* scores = scratch;  // [group][positions of the chunk]
  float* running_max = scratch + static_cast<int64_t>(group) * chunk;
  float* running_sum = running_max + group;
  std::fill(running_max, running_max + group, -INFINITY);
  std::fill(running_sum, running_sum + group, 0.0f);
  float* out = att_.data() + t * q_dim_ + static_cast<int64_t>(kvh) * group * head_dim_;
  std::fill(out, out + group * head_dim_, 0.0f);

  for (int32_t c0 = 0; c0 < n; c0 += chunk) {
    const int32_t len = std::min(chunk, n - c0);
    for (int32_t j0 = c0; j0 < c0 + len; j0 += block_size_) {
      const int32_t rows = std::min(block_size_, c0 + len - j0);
      const WMat kb{kv_format_, rows, head_dim_, kv_head(seq.kv_blocks[j0 / block_size_], layer, KvPart::Key, kvh), nullptr};
      kernels_.matmul_float(kb, q, group, 0, rows, scores + (j0 - c0), len);  // scores[h * len + j]
    }
    for (int h = 0; h < group; ++h) {
      float* s = scores + static_cast<int64_t>(h) * len;
      float chunk_max = -INFINITY;
      for (int32_t j = 0; j < len; ++j) chunk_max = std::max(chunk_max, s[j] *= scale);
      const float new_max = std::max(running_max[h], chunk_max);
      const float sum = kernels_.exp_shift_sum(s, len, new_max);  // s[j] = exp(s[j] - new_max)
      if (new_max != running_max[h]) {
        const float rescale = std::exp(running_max[h] - new_max);  // 0 on the first chunk
        float* o = out + static_cast<int64_t>(h) * head_dim_;
        for (int32_t i = 0; i < head_dim_; ++i) o[i] *= rescale;
        running_sum[h] *= rescale;
        running_max[h] = new_max;
      }
      running_sum[h] += sum;
    }
    for (int32_t j0 = c0; j0 < c0 + len; j0 += block_size_) {
      const int32_t rows = std::min(block_size_, c0 + len - j0);
      const uint8_t* v = kv_head(seq.kv_blocks[j0 / block_size_], layer, KvPart::Value, kvh);
      if (kv_format_ == WFormat::F16) {  // the block's fp16 rows widened once for the whole group
        thread_local std::vector<float> wide;
        wide.resize(static_cast<size_t>(rows) * head_dim_);
        kernels_.widen_f16(reinterpret_cast<const uint16_t*>(v), wide.data(), static_cast<int64_t>(rows) * head_dim_);
        v = reinterpret_cast<const uint8_t*>(wide.data());
      }
      kernels_.axpy_rows(out, scores + (j0 - c0), len, group, reinterpret_cast<const float*>(v), rows, head_dim_);
    }
  }
  for (int h = 0; h < group; ++h) {
    const float inv_sum = 1.0f / running_sum[h];
    float* o = out + static_cast<int64_t>(h) * head_dim_;
    for (int32_t i = 0; i < head_dim_; ++i) o[i] *= inv_sum;
  }
}

// Positions attention scores at once: whole KV blocks, about 256 positions,
// so the online softmax's per-chunk work is spread over many rows.
int32_t CpuProvider::attention_chunk() const { return std::max(block_size_, kAttentionChunk / block_size_ * block_size_); }

void CpuProvider::mlp_block(const LayerWeights& L, int64_t T) {
  const int64_t H = cfg_.hidden_size, F = cfg_.intermediate_size;
  rmsnorm(x_.data(), L.mlp_norm, xn_.data(), T);
  const MatmulJob gate_up[2] = {{&L.gate, gate_.data()}, {&L.up, up_.data()}};
  project(xn_.data(), T, H, gate_up, 2);
  pool_.parallel_for(T, [&](int64_t b, int64_t e) {  // silu(gate) * up, into gate, one token at a time
    for (int64_t t = b; t < e; ++t) kernels_.silu_mul(gate_.data() + t * F, up_.data() + t * F, F);
  });
  const MatmulJob down[1] = {{&L.down, proj_.data()}};
  project(gate_.data(), T, F, down, 1);
  for (int64_t i = 0; i < T * H; ++i) x_[i] += proj_[i];
}

void CpuProvider::logits(std::span<const SeqStep> batch, LogitsOut& out) {
  const int64_t H = cfg_.hidden_size;
  int64_t rows = 0, t = 0;
  last_.clear();
  for (const SeqStep& st : batch) {
    t += static_cast<int64_t>(st.tokens.size());
    if (!st.want_logits) continue;
    last_.insert(last_.end(), x_.begin() + (t - 1) * H, x_.begin() + t * H);
    ++rows;
  }
  out.rows = static_cast<int32_t>(rows);
  out.data.resize(static_cast<size_t>(rows) * cfg_.vocab_size);
  if (rows == 0) return;
  rmsnorm(last_.data(), w_->final_norm, xn_.data(), rows);
  const MatmulJob head[1] = {{&w_->lm_head, out.data.data()}};
  project(xn_.data(), rows, H, head, 1);
}

}  // namespace neoserve::cpu
