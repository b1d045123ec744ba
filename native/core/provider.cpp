#include "provider.h"

#include "error.h"

namespace neoserve {

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
