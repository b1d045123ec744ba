// The seam between the scheduler and every engine (ARCHITECTURE.md): one step of
// the model over a ragged batch. Some sequences bring a prefill chunk, others
// one decode token; each reads and writes its KV cache through its block table.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace neoserve {

using SeqId = uint64_t;

struct SeqStep {
  SeqId id = 0;
  std::span<const int32_t> tokens;     // the tokens this step feeds (a prefill chunk, or one decode token)
  int32_t pos = 0;                     // position of tokens[0]; KV for [0, pos) is already in the cache
  std::span<const int32_t> kv_blocks;  // block table: block i holds positions [i*block_size, (i+1)*block_size)
  bool want_logits = true;             // logits of the chunk's last token are wanted
};

// The host memory an engine holds and may grow to, as it plans it before
// allocating: the scheduler checks the whole against the machine with its own
// step size (check_working_memory). Zero for memory an engine keeps elsewhere
// (a GPU's).
struct WorkingMemory {
  size_t weights_bytes = 0;          // resident weights: converted copies, or the mapping's pages
  size_t kv_bytes = 0;               // the KV cache
  size_t fixed_scratch_bytes = 0;    // per-thread buffers, RoPE tables: independent of the step
  size_t scratch_bytes_per_token = 0;      // activations of one token of a step
  size_t scratch_bytes_per_logits_row = 0;  // one row of logits (a sequence that wants them)
  size_t limit_bytes = 0;            // what it may plan for (memoryLimitBytes); 0 = host_memory_bytes()
  // Everything, for steps of up to `step_tokens` tokens and `logits_rows` rows of logits.
  size_t total(int64_t step_tokens, int64_t logits_rows) const;
};

// The memory this process may use: the machine's physical memory, or its
// cgroup's limit (a container's) when that is lower.
size_t host_memory_bytes();

// Throws OutOfMemory, naming each part and the option that sizes it, when
// `memory` for steps of `max_step_tokens` (and `max_sequences` rows of logits)
// exceeds its limit.
void check_working_memory(const WorkingMemory& memory, int32_t max_step_tokens, int32_t max_sequences);

struct ProviderInfo {
  std::string name;       // "cpu", "tensorrt", ...
  std::string device;     // "cpu (avx512-vnni, 2 threads)", "GPU-<uuid>", ...
  std::string precision;  // "f32", "f16", "bf16", "int8", "q8_0"
  int32_t vocab_size = 0;
  int32_t max_context = 0;  // positions the model supports
  // The model's end-of-sequence ids (config, generation config or GGUF
  // metadata): the scheduler stops on them unless a request ignores EOS.
  std::vector<int32_t> eos_token_ids;
  WorkingMemory memory;
  // The CPU engine's weight cache: "off", "hit", "written", "rewritten (why)", "not written: why".
  std::string weight_cache = "off";
};

// Positions per KV-cache block, unless the caller sets kvBlockSize.
inline constexpr int32_t kDefaultKvBlockSize = 16;

struct KvGeometry {
  int32_t block_size = kDefaultKvBlockSize;  // positions per block
  size_t bytes_per_block = 0;  // all layers, K and V
  int32_t num_blocks = 0;      // blocks the provider allocated
};

// Logits rows, one per SeqStep with want_logits, in the order of the steps.
struct LogitsOut {
  std::vector<float> data;  // rows * vocab
  int32_t rows = 0;
  int32_t vocab = 0;
  const float* row(int32_t i) const { return data.data() + static_cast<size_t>(i) * vocab; }
};

// What every provider refuses in a step, before doing any work: no tokens, a
// bad position, positions past the context, a token outside the vocabulary, a
// block table that misses blocks or names unknown ones. Throws InvalidRequest
// naming the step and sequence.
struct StepLimits {
  int32_t vocab = 0;
  int32_t max_positions = 0;
  int32_t block_size = kDefaultKvBlockSize;
  int32_t num_blocks = 0;
};
void check_steps(std::span<const SeqStep> batch, const StepLimits& limits);
// "batch[i] (sequence id): ", the prefix of every such error.
std::string step_where(std::span<const SeqStep> batch, size_t i);

class Provider {
 public:
  virtual ~Provider() = default;
  virtual ProviderInfo info() const = 0;
  virtual KvGeometry kv() const = 0;
  // Runs the model on every step's tokens, writes their K/V into the blocks
  // named by each block table, and fills `out`. Throws InvalidRequest for a
  // malformed batch (unknown block, position past the context, token out of vocab).
  virtual void step(std::span<const SeqStep> batch, LogitsOut& out) = 0;
  // Runs fn over [0, n) in pieces on the provider's own threads, idle between
  // steps (the scheduler samples a step's rows with them); by default in one
  // call on the caller's. fn's exceptions reach the caller.
  virtual void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) { fn(0, n); }
};

}  // namespace neoserve
