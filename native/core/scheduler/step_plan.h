// One scheduler step as values: what schedule() decided to run (StepPlan) and
// what the provider gave back (StepOutputs). Kept apart from the Scheduler so a
// step can be logged, compared and tested without the thread that runs it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../provider.h"

namespace neoserve {

struct Sequence;

struct StepPlan {
  // Decodes first: steps[0, decodes) feed one sampled token each, the rest are
  // prompt chunks in admission order. A span in a step points into its
  // sequence's context and block table, so a plan is good until those change.
  std::vector<SeqStep> steps;
  std::vector<Sequence*> seqs;  // seqs[i]: the running sequence steps[i] advances
  int32_t decodes = 0;
  // The step-time model's features of this step (see step_time_model.h).
  int32_t tokens = 0;
  double attended = 0;

  bool empty() const { return steps.empty(); }
  int32_t prefill_tokens() const { return tokens - decodes; }
  void clear() {
    steps.clear();
    seqs.clear();
    decodes = 0;
    tokens = 0;
    attended = 0;
  }
};

// "3 seqs, 18 tokens: decode #1@pos 7, decode #2@pos 9, prefill #3 [0,16)"
std::string describe(const StepPlan& plan);

struct StepOutputs {
  const LogitsOut* logits = nullptr;  // one row per step that wants logits, in plan order
  double step_ms = 0;                 // wall time of the provider step
  bool failed = false;                // the provider threw: no logits, every stepped sequence ends in error
  std::string error;                  // what it threw
};

}  // namespace neoserve
