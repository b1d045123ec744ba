#include "provider.h"

#include <algorithm>
#include <fstream>

#include <unistd.h>

#include "error.h"

namespace neoserve {

size_t WorkingMemory::total(int64_t step_tokens, int64_t logits_rows) const {
  return weights_bytes + kv_bytes + fixed_scratch_bytes + scratch_bytes_per_token * static_cast<size_t>(step_tokens) +
         scratch_bytes_per_logits_row * static_cast<size_t>(logits_rows);
}

size_t host_memory_bytes() {
  size_t bytes = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  // cgroup v2, then v1; "max" (or v1's huge number) means no limit.
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream file(path);
    unsigned long long limit = 0;
    if (file >> limit && limit > 0) bytes = std::min<size_t>(bytes, static_cast<size_t>(limit));
  }
  return bytes;
}

void check_working_memory(const WorkingMemory& m, int32_t max_step_tokens, int32_t max_sequences) {
  const int64_t rows = std::min(max_step_tokens, max_sequences);
  const size_t total = m.total(max_step_tokens, rows);
  const bool machine = m.limit_bytes == 0;
  const size_t limit = machine ? host_memory_bytes() : m.limit_bytes;
  if (total <= limit) return;
  const size_t step = m.scratch_bytes_per_token * static_cast<size_t>(max_step_tokens) + m.scratch_bytes_per_logits_row * static_cast<size_t>(rows);
  throw Error(ErrorCode::OutOfMemory,
              "out of memory: the model needs " + std::to_string(total) + " bytes of working memory (weights " +
                  std::to_string(m.weights_bytes) + ", KV cache " + std::to_string(m.kv_bytes) + " from kvMemoryBytes, step scratch " +
                  std::to_string(step) + " for maxBatchTokens " + std::to_string(max_step_tokens) + ", other scratch " +
                  std::to_string(m.fixed_scratch_bytes) + "); " +
                  (machine ? "this machine has " : "memoryLimitBytes allows ") + std::to_string(limit) + " bytes");
}

std::string step_where(std::span<const SeqStep> batch, size_t i) {
  return "batch[" + std::to_string(i) + "] (sequence " + std::to_string(batch[i].id) + "): ";
}

void check_steps(std::span<const SeqStep> batch, const StepLimits& l) {
  for (size_t s = 0; s < batch.size(); ++s) {
    const SeqStep& st = batch[s];
    const std::string where = step_where(batch, s);
    if (st.tokens.empty()) throw_invalid(where + "no tokens");
    if (st.pos < 0) throw_invalid(where + "negative position " + std::to_string(st.pos));
    const int64_t end = static_cast<int64_t>(st.pos) + static_cast<int64_t>(st.tokens.size());
    if (end > l.max_positions)
      throw_invalid(where + "positions up to " + std::to_string(end) + " exceed the context of " +
                    std::to_string(l.max_positions));
    for (int32_t t : st.tokens)
      if (t < 0 || t >= l.vocab)
        throw_invalid(where + "token id " + std::to_string(t) + " outside the vocabulary [0, " + std::to_string(l.vocab) + ")");
    const int64_t needed = (end + l.block_size - 1) / l.block_size;
    if (static_cast<int64_t>(st.kv_blocks.size()) < needed)
      throw_invalid(where + "block table has " + std::to_string(st.kv_blocks.size()) + " blocks, positions up to " +
                    std::to_string(end) + " need " + std::to_string(needed));
    for (int64_t i = 0; i < needed; ++i)
      if (st.kv_blocks[i] < 0 || st.kv_blocks[i] >= l.num_blocks)
        throw_invalid(where + "KV block " + std::to_string(st.kv_blocks[i]) + " outside [0, " + std::to_string(l.num_blocks) + ")");
  }
}

}  // namespace neoserve
