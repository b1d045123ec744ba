// A JS request object → GenerationRequest: types only (validate_request checks
// ranges), except the seed, which must convert exactly and is drawn when absent.
#pragma once
#include <napi.h>

#include "core/scheduler/request.h"
#include "js_options.h"

namespace neoserve::binding {

// Absent fields keep GenerationRequest's defaults; ranges are Scheduler::submit's to check.
inline GenerationRequest read_request(const Napi::Object& o) {
  GenerationRequest r;
  r.prompt = int_array(o.Get("tokens"), "tokens");
  r.max_tokens = int_or(o, "maxTokens", r.max_tokens);
  SamplingParams& s = r.sampling;
  s.temperature = static_cast<float>(number_or(o, "temperature", s.temperature));
  s.top_k = int_or(o, "topK", s.top_k);
  s.top_p = static_cast<float>(number_or(o, "topP", s.top_p));
  s.min_p = static_cast<float>(number_or(o, "minP", s.min_p));
  s.repetition_penalty = static_cast<float>(number_or(o, "repetitionPenalty", s.repetition_penalty));
  s.frequency_penalty = static_cast<float>(number_or(o, "frequencyPenalty", s.frequency_penalty));
  s.presence_penalty = static_cast<float>(number_or(o, "presencePenalty", s.presence_penalty));
  if (absent(o.Get("seed"))) {
    s.seed = fresh_seed();  // no seed given: a new one each request
  } else {
    // A JS number holds integers exactly up to 2^53 - 1: only those convert.
    const double seed = number_or(o, "seed", 0);
    if (!(seed >= 0 && seed <= 9007199254740991.0) || seed != static_cast<double>(static_cast<uint64_t>(seed)))
      throw_invalid("seed must be an integer in [0, 2^53 - 1], got " + std::to_string(seed));
    s.seed = static_cast<uint64_t>(seed);
  }
  s.stop_token_ids = int_array(o.Get("stopTokenIds"), "stopTokenIds");
  r.ignore_eos = bool_or(o, "ignoreEos", r.ignore_eos);
  r.capture_logits = bool_or(o, "returnLogits", r.capture_logits);
  r.logprobs = int_or(o, "logprobs", r.logprobs);
  r.priority = int_or(o, "priority", r.priority);
  r.deadline_ms = number_or(o, "deadlineMs", r.deadline_ms);
  return r;
}

}  // namespace neoserve::binding
