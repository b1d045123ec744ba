// How the TensorRT provider turns a step's ragged batch into engine calls,
// and the host inputs of each call. Plain C++ (no CUDA, no TensorRT), so
// that native/test/test_tensorrt.cpp runs it on any machine against a host
// model of the engine.
//
// Calls: decode sequences (one token) share calls of at most batch_cap
// sequences, longest past first so that a call's sequences pad to similar
// lengths; each prefill chunk is a call of its own, split when longer than
// chunk_cap: the first piece takes the remainder and the others chunk_cap
// tokens, so the last piece starts at end - chunk_cap and every piece's past
// fits the profile whenever validate_batch() accepted the step.
//
// Inputs of a call of B sequences padded to S new tokens after P past
// positions (sequence b: pos_b real past positions, len_b real new tokens):
//   input_ids / position_ids [B, S]: the chunk's tokens and positions pos_b + j;
//     padding repeats the last real token at its position (valid ids, outputs dropped);
//   attention_mask [B, P + S], over the engine's [past (P) | new (S)] columns:
//     column   0 .. pos_b-1 | pos_b .. P-1 | P .. P+len_b-1 | P+len_b .. P+S-1
//     mask     1            | 0 (padding)  | 1              | 0 (padding)
//   The engine adds its own causal mask over the same columns (new token j
//   sees columns <= P + j), so a real token sees exactly its sequence's real
//   past and the real tokens before it; positions come from position_ids,
//   never from columns, so padding does not shift RoPE.
#pragma once
#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/provider.h"
#include "kv_layout.h"

namespace neoserve::trt {

struct PlanLimits {
  int32_t vocab = 0;
  int32_t max_position_embeddings = 0;
  int32_t block_size = kDefaultKvBlockSize;
  int32_t num_blocks = 0;
  int64_t max_past = 0;   // the profile's past range: [min_past, max_past]
  int64_t min_past = 0;
  int64_t mask_min = 0;   // the profile's minimum attention_mask length (past + tokens)
  int32_t batch_cap = 1;  // decode sequences per call
  int32_t chunk_cap = 1;  // prefill tokens per call
  int32_t max_context = 0;
};

// The padded past length a call of `tokens` new tokens needs at least: an
// engine whose profile has no empty past (or too short a mask) gets masked
// padding positions.
inline int32_t past_floor(const PlanLimits& l, int32_t tokens) {
  return static_cast<int32_t>(std::max<int64_t>({0, l.min_past, l.mask_min - tokens}));
}

// Throws InvalidRequest for a step the provider cannot run: what every
// provider refuses (check_steps), and positions the engine's profile cannot reach.
inline void validate_batch(std::span<const SeqStep> batch, const PlanLimits& l) {
  check_steps(batch, {l.vocab, l.max_position_embeddings, l.block_size, l.num_blocks});
  for (size_t s = 0; s < batch.size(); ++s) {
    const SeqStep& st = batch[s];
    const int64_t end = static_cast<int64_t>(st.pos) + static_cast<int64_t>(st.tokens.size());
    // The step's last piece starts at max(pos, end - chunk_cap); its past must fit the profile.
    if (st.pos > l.max_past || end > l.max_past + l.chunk_cap)
      throw_invalid(step_where(batch, s) + "positions up to " + std::to_string(end) +
                    " exceed what the engine's profile allows (a past of at most " + std::to_string(l.max_past) +
                    " positions and " + std::to_string(l.chunk_cap) + " new tokens per call; context " +
                    std::to_string(l.max_context) + ")");
  }
}

// One engine call: `count` sequences, each padded to `tokens` new tokens (S)
// after `past` past positions (P).
struct Call {
  int32_t first;  // index of its first CallSeq
  int32_t count;
  int32_t past;
  int32_t tokens;
};

// One sequence's chunk in a call.
struct CallSeq {
  int32_t step;     // index into the batch
  int32_t offset;   // first token of the chunk within the step's tokens
  int32_t pos;      // position of that token
  int32_t len;      // real tokens
  int32_t out_row;  // LogitsOut row, or -1
};

struct CallPlan {
  std::vector<Call> calls;
  std::vector<CallSeq> seqs;
  int32_t rows = 0;  // LogitsOut rows: the steps with want_logits, in batch order

  // For a batch validate_batch() accepted. Reuses its vectors' memory.
  void build(std::span<const SeqStep> batch, const PlanLimits& l) {
    calls.clear();
    seqs.clear();
    decodes_.clear();
    row_of_.assign(batch.size(), -1);
    rows = 0;
    for (size_t s = 0; s < batch.size(); ++s)
      if (batch[s].want_logits) row_of_[s] = rows++;

    for (size_t s = 0; s < batch.size(); ++s)
      if (batch[s].tokens.size() == 1) decodes_.push_back(static_cast<int32_t>(s));
    std::stable_sort(decodes_.begin(), decodes_.end(), [&](int32_t a, int32_t b) { return batch[a].pos > batch[b].pos; });
    const auto cap = static_cast<size_t>(std::max(l.batch_cap, 1));
    for (size_t i = 0; i < decodes_.size(); i += cap) {
      const size_t n = std::min(decodes_.size() - i, cap);
      Call call{static_cast<int32_t>(seqs.size()), static_cast<int32_t>(n), past_floor(l, 1), 1};
      for (size_t k = 0; k < n; ++k) {
        const int32_t s = decodes_[i + k];
        seqs.push_back({s, 0, batch[s].pos, 1, row_of_[s]});
        call.past = std::max(call.past, batch[s].pos);
      }
      calls.push_back(call);
    }

    const int32_t chunk = std::max(l.chunk_cap, 1);
    for (size_t s = 0; s < batch.size(); ++s) {
      const SeqStep& st = batch[s];
      if (st.tokens.size() <= 1) continue;
      const auto n = static_cast<int32_t>(st.tokens.size());
      const int32_t pieces = (n + chunk - 1) / chunk;
      int32_t offset = 0;
      for (int32_t k = 0; k < pieces; ++k) {
        const int32_t len = k == 0 ? n - (pieces - 1) * chunk : chunk;
        const int32_t start = st.pos + offset;
        calls.push_back({static_cast<int32_t>(seqs.size()), 1, std::max(start, past_floor(l, len)), len});
        seqs.push_back({static_cast<int32_t>(s), offset, start, len, k == pieces - 1 ? row_of_[s] : -1});
        offset += len;
      }
    }
  }

 private:
  std::vector<int32_t> decodes_;
  std::vector<int32_t> row_of_;
};

// Host buffers of one call's inputs, each large enough for the largest call.
struct CallInputs {
  KvSeq* seqs = nullptr;       // [B]
  int32_t* tables = nullptr;   // [B][table_stride]
  void* ids = nullptr;         // [B][S] int64 or int32
  void* positions = nullptr;   // [B][S] int64 or int32
  void* mask = nullptr;        // [B][P + S] int64 or int32
  bool ids64 = true;
  bool mask64 = true;
};

namespace detail {

inline void put_int(void* base, size_t index, int64_t v, bool wide) {
  if (wide) static_cast<int64_t*>(base)[index] = v;
  else static_cast<int32_t*>(base)[index] = static_cast<int32_t>(v);
}

inline void fill_int(void* base, size_t begin, size_t count, int64_t v, bool wide) {
  if (wide) std::fill_n(static_cast<int64_t*>(base) + begin, count, v);
  else std::fill_n(static_cast<int32_t*>(base) + begin, count, static_cast<int32_t>(v));
}

}  // namespace detail

// Writes the inputs of `call` (see the top of this file) and returns the
// block tables' stride. Each sequence that wants logits gets the next staged
// row: its KvSeq::out_row is staged_out.size() before its LogitsOut row is
// appended to staged_out.
inline int32_t fill_call_inputs(const Call& call, const CallSeq* call_seqs, std::span<const SeqStep> batch,
                                int32_t block_size, const CallInputs& in, std::vector<int32_t>& staged_out) {
  const int32_t B = call.count, P = call.past, S = call.tokens, width = P + S;
  int32_t max_end = 0;
  for (int32_t b = 0; b < B; ++b) max_end = std::max(max_end, call_seqs[b].pos + call_seqs[b].len);
  const int32_t table_stride = (max_end + block_size - 1) / block_size;

  for (int32_t b = 0; b < B; ++b) {
    const CallSeq& cs = call_seqs[b];
    const SeqStep& st = batch[cs.step];
    int32_t staged_row = -1;
    if (cs.out_row >= 0) {
      staged_row = static_cast<int32_t>(staged_out.size());
      staged_out.push_back(cs.out_row);
    }
    in.seqs[b] = {cs.pos, cs.len, staged_row, 0};

    const int32_t needed = (cs.pos + cs.len + block_size - 1) / block_size;
    int32_t* table = in.tables + static_cast<size_t>(b) * table_stride;
    for (int32_t i = 0; i < table_stride; ++i) table[i] = i < needed ? st.kv_blocks[i] : 0;  // the rest is never read

    const size_t row = static_cast<size_t>(b) * S;
    for (int32_t j = 0; j < S; ++j) {
      const int32_t k = j < cs.len ? j : cs.len - 1;
      detail::put_int(in.ids, row + j, st.tokens[cs.offset + k], in.ids64);
      detail::put_int(in.positions, row + j, cs.pos + k, in.ids64);
    }
    const size_t mask_row = static_cast<size_t>(b) * width;
    detail::fill_int(in.mask, mask_row, cs.pos, 1, in.mask64);
    detail::fill_int(in.mask, mask_row + cs.pos, P - cs.pos, 0, in.mask64);
    detail::fill_int(in.mask, mask_row + P, cs.len, 1, in.mask64);
    detail::fill_int(in.mask, mask_row + P + cs.len, S - cs.len, 0, in.mask64);
  }
  return table_stride;
}

}  // namespace neoserve::trt
