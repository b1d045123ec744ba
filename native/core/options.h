// Every option a caller sets when loading a model, defined once: its JS name,
// its default (the member initializers below and in SchedulerOptions), its
// range and its meaning. visit_load_options() walks them; the binding reads a
// JS object through it and only converts types, validate() checks every range
// through it, and describe_load_options() tells JS the defaults and ranges
// (src/addon.ts mirrors the names with doc comments).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "error.h"
#include "scheduler/scheduler.h"

namespace neoserve {

// What the registry needs to pick and build a provider.
struct ProviderOptions {
  std::string backend = "auto";    // "auto", "cpu", "tensorrt", "synthetic" (no model work; benchmarks)
  std::string precision = "auto";  // "auto" (the weights' own), "f32", "int8"
  int32_t threads = 0;             // 0 = the machine's cores
  std::string device;              // accelerators: "" (the first), an index, "GPU-<uuid>", "MIG-<uuid>"
  int32_t kv_block_size = kDefaultKvBlockSize;
  size_t kv_memory_bytes = 0;      // 0 = the provider's default
  std::string kv_cache_dtype = "f32";  // "f32", "f16" (the CPU provider; a TensorRT engine's KV type is its own)
  size_t memory_limit_bytes = 0;   // 0 = the machine's memory (its cgroup's limit, if lower)
  std::string weight_cache;        // a directory for the CPU engine's converted weights; "" = off
  std::string weight_cache_check = "header";  // "header" (structure, key, bounds) or "full" (every byte's checksum too)
};

struct LoadOptions {
  ProviderOptions provider;
  SchedulerOptions scheduler;
};

// A closed numeric range (NaN is never in it).
struct Range {
  double min;
  double max;
};

template <typename T>
using Choices = std::initializer_list<std::pair<const char*, T>>;

// The visitor sees each option once, in this order, with the field it sets.
// (const for readers). Visitor methods: integer(name, int32_t&, Range, meaning), number(name,
// double&, Range, meaning), bytes(name, size_t&, Range, meaning), text(name,
// std::string&, meaning), choice(name, T&, Choices<T>, meaning).
template <typename Options, typename Visitor>
  requires std::is_same_v<std::remove_const_t<Options>, LoadOptions>
void visit_load_options(Options& o, Visitor&& v) {
  auto& p = o.provider;
  auto& s = o.scheduler;
  v.choice("backend", p.backend,
           Choices<std::string>{{"auto", "auto"}, {"cpu", "cpu"}, {"tensorrt", "tensorrt"}, {"synthetic", "synthetic"}},
           "the engine: auto picks the best this machine has; synthetic runs no model (scheduler benchmarks)");
  v.choice("precision", p.precision, Choices<std::string>{{"auto", "auto"}, {"f32", "f32"}, {"int8", "int8"}},
           "auto computes in the checkpoint's own precision; int8 quantizes weights at load");
  v.integer("threads", p.threads, Range{0, 1024}, "engine threads; 0 = all cores");
  v.text("device", p.device, "an accelerator: a CUDA index, GPU-<uuid> or MIG-<uuid>; empty = the first");
  v.integer("kvBlockSize", p.kv_block_size, Range{1, 1024}, "positions per KV-cache block");
  v.bytes("kvMemoryBytes", p.kv_memory_bytes, Range{0, 9007199254740991.0}, "bytes of KV cache; 0 = the provider's default");
  v.choice("kvCacheDtype", p.kv_cache_dtype, Choices<std::string>{{"f32", "f32"}, {"f16", "f16"}},
           "the CPU engine's KV-cache element: f16 halves its memory (keys and values rounded to fp16); a TensorRT engine keeps its own");
  v.bytes("memoryLimitBytes", p.memory_limit_bytes, Range{0, 9007199254740991.0},
          "host memory the engine may plan for (weights, KV cache, step scratch); 0 = the machine's, or its cgroup's limit");
  v.text("weightCache", p.weight_cache,
         "a directory where the CPU engine keeps the weights it converts at load (panels, int8), mapped instead of converted on the next "
         "load of the same files with the same settings; empty = off");
  v.choice("weightCacheCheck", p.weight_cache_check, Choices<std::string>{{"header", "header"}, {"full", "full"}},
           "what a load checks of a weight cache file it maps: header checks its layout, key and bounds; full also checksums every "
           "byte (one more pass over the weights, as long as reading them from memory)");
  v.integer("maxBatchSize", s.max_batch_size, Range{1, 16384}, "sequences in one step");
  v.integer("maxBatchTokens", s.max_batch_tokens, Range{1, 1 << 20}, "tokens in one step: decodes + prompt chunks");
  v.integer("maxQueueSize", s.max_queue_size, Range{0, std::numeric_limits<int32_t>::max()},
            "waiting requests (beyond the batch an idle engine is gathering); beyond it a submit fails with queue_full. 0 = unbounded");
  v.number("maxQueueDelayMs", s.max_queue_delay_ms, Range{0, 1e12},
           "a request not started within it ends with queue_timeout. 0 = no cap");
  v.number("itlCapMs", s.itl_cap_ms, Range{0, 1e12},
           "inter-token latency cap: prompt work per step is limited so decode steps stay under it. 0 = off");
  v.number("batchWindowMs", s.batch_window_ms, Range{0, 1000},
           "an idle engine waits up to this long for a burst of requests (arriving over a network) to join its first step, starting once a quarter of it passes with no new one. 0 = off");
  v.choice("policy", s.policy,
           Choices<SchedulePolicy>{{"fcfs", SchedulePolicy::Fcfs}, {"priority", SchedulePolicy::Priority}, {"edf", SchedulePolicy::Edf}},
           "order of waiting requests: arrival, request priority, or earliest deadline");
  v.choice("kvPolicy", s.kv_policy,
           Choices<KvPolicy>{{"no-evict", KvPolicy::NoEvict}, {"max-utilization", KvPolicy::MaxUtilization}},
           "no-evict reserves prompt + maxTokens at admission; max-utilization admits on need and preempts by recompute");
}

// Throws InvalidRequest: `name` must be one of the choices' labels.
template <typename T>
[[noreturn]] void throw_not_a_choice(const char* name, const std::string& given, Choices<T> choices) {
  std::string labels;
  for (const auto& [label, _] : choices) labels += (labels.empty() ? "\"" : ", \"") + std::string(label) + "\"";
  throw_invalid(std::string(name) + " must be one of " + labels + ", got \"" + given + "\"");
}

// Throws InvalidRequest naming the first option out of its range.
void validate(const LoadOptions& options);

// One option as JS sees it: for the addon's optionTable() (docs, tests, defaults).
struct OptionDescription {
  std::string name;
  std::string kind;  // "integer", "number", "bytes", "text", "choice"
  std::string default_text;  // the default as text ("16", "fcfs", "")
  double default_number = 0;
  double min = 0, max = 0;
  std::vector<std::string> choices;
  std::string meaning;
};
std::vector<OptionDescription> describe_load_options();

}  // namespace neoserve
