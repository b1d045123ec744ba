#include "engine_io.h"

#include <algorithm>

#include "../error.h"
#include "shape_text.h"

namespace neoserve {

const char* engine_dtype_name(EngineDType t) {
  switch (t) {
    case EngineDType::Float32: return "float32";
    case EngineDType::Float16: return "float16";
    case EngineDType::BFloat16: return "bfloat16";
    case EngineDType::Int8: return "int8";
    case EngineDType::Int32: return "int32";
    case EngineDType::Int64: return "int64";
    case EngineDType::Bool: return "bool";
    case EngineDType::Other: return "another type";
  }
  return "another type";
}

namespace {

class Checker {
 public:
  Checker(const EngineManifest& m, const EngineDescription& e) : m_(m), e_(e) {}

  const EngineTensor& get(const std::string& name, bool input) {
    auto it = std::find_if(e_.tensors.begin(), e_.tensors.end(), [&](const EngineTensor& t) { return t.name == name; });
    if (it == e_.tensors.end())
      fail("the engine has no " + std::string(input ? "input" : "output") + " tensor \"" + name + "\" (" +
           m_.path + " names it; the engine's tensors are: " + names() + ")");
    if (it->is_input != input) fail(name + ": expected an " + (input ? "input" : "output") + ", the engine has an " + (input ? "output" : "input"));
    return *it;
  }

  void dtype(const EngineTensor& t, std::initializer_list<EngineDType> allowed) {
    if (std::find(allowed.begin(), allowed.end(), t.dtype) != allowed.end()) return;
    std::string want;
    for (EngineDType d : allowed) want += (want.empty() ? "" : " or ") + std::string(engine_dtype_name(d));
    fail(t.name + ": dtype " + engine_dtype_name(t.dtype) + ", expected " + want);
  }

  // Rank, and each fixed dimension (>= 0 in `want`) equal to the engine's when the engine fixes it too.
  void dims(const EngineTensor& t, const std::vector<int64_t>& want, const char* layout) {
    if (t.shape.size() != want.size())
      fail(t.name + ": shape " + shape_text(t.shape) + " has rank " + std::to_string(t.shape.size()) + ", expected " + layout);
    for (size_t i = 0; i < want.size(); ++i)
      if (want[i] >= 0 && t.shape[i] >= 0 && t.shape[i] != want[i])
        fail(t.name + ": shape " + shape_text(t.shape) + ", expected " + layout + " with dimension " + std::to_string(i) +
             " = " + std::to_string(want[i]) + " from " + m_.dir + "/config.json");
    if (!t.is_input) return;
    if (t.min.size() != want.size() || t.max.size() != want.size())
      fail(t.name + ": the engine reports no optimization profile range for it");
    for (size_t i = 0; i < want.size(); ++i) {
      if (t.min[i] > t.max[i] || t.min[i] < 0) fail(t.name + ": profile range of dimension " + std::to_string(i) + " is invalid");
      if (want[i] >= 0 && (t.min[i] != want[i] || t.max[i] != want[i]))
        fail(t.name + ": profile allows dimension " + std::to_string(i) + " in [" + std::to_string(t.min[i]) + ", " +
             std::to_string(t.max[i]) + "], the model needs exactly " + std::to_string(want[i]));
    }
  }

  [[noreturn]] void fail(const std::string& what) const { throw_load_error(m_.engine_file, what); }

 private:
  std::string names() const {
    std::string s;
    for (const EngineTensor& t : e_.tensors) s += (s.empty() ? "" : ", ") + t.name;
    return s.empty() ? "none" : s;
  }
  const EngineManifest& m_;
  const EngineDescription& e_;
};

}  // namespace

EngineLimits validate_engine_io(const EngineManifest& m, const EngineDescription& e) {
  Checker c(m, e);
  const LlamaConfig& cfg = m.config;
  const EngineIoNames& io = m.io;
  const int64_t kvh = cfg.num_key_value_heads, hd = cfg.head_dim, vocab = cfg.vocab_size;
  const int32_t layers = cfg.num_hidden_layers;
  const size_t expected = 4 + 4 * static_cast<size_t>(layers);
  if (e.num_profiles < 1) c.fail("the engine has no optimization profile");

  EngineLimits limits;
  const EngineTensor& ids = c.get(io.input_ids, true);
  c.dtype(ids, {EngineDType::Int64, EngineDType::Int32});
  c.dims(ids, {-1, -1}, "[batch, tokens]");
  limits.ids_dtype = ids.dtype;
  limits.max_batch = ids.max[0];
  limits.max_tokens = ids.max[1];

  const EngineTensor& pos = c.get(io.position_ids, true);
  c.dtype(pos, {ids.dtype});
  c.dims(pos, {-1, -1}, "[batch, tokens]");
  const EngineTensor& mask = c.get(io.attention_mask, true);
  c.dtype(mask, {EngineDType::Int64, EngineDType::Int32});
  c.dims(mask, {-1, -1}, "[batch, past + tokens]");
  limits.mask_dtype = mask.dtype;

  const EngineTensor& logits = c.get(io.logits, false);
  c.dtype(logits, {EngineDType::Float32, EngineDType::Float16});
  c.dims(logits, {-1, -1, vocab}, "[batch, tokens, vocab]");
  limits.logits_dtype = logits.dtype;

  limits.max_past = -1;
  for (int32_t l = 0; l < layers; ++l) {
    for (const std::string* pattern : {&io.past_key, &io.past_value}) {
      const EngineTensor& past = c.get(EngineIoNames::layer(*pattern, l), true);
      c.dtype(past, {EngineDType::Float16, EngineDType::Float32, EngineDType::BFloat16});
      c.dims(past, {-1, kvh, -1, hd}, "[batch, kv_heads, past, head_dim]");
      if (l == 0 && pattern == &io.past_key) limits.kv_dtype = past.dtype;
      if (past.dtype != limits.kv_dtype) c.fail(past.name + ": dtype differs from layer 0's past key");
      if (past.max[0] != limits.max_batch) c.fail(past.name + ": profile's batch range differs from " + ids.name + "'s");
      limits.max_past = limits.max_past < 0 ? past.max[2] : std::min(limits.max_past, past.max[2]);
      limits.min_past = std::max(limits.min_past, past.min[2]);
    }
    for (const std::string* pattern : {&io.present_key, &io.present_value}) {
      const EngineTensor& present = c.get(EngineIoNames::layer(*pattern, l), false);
      c.dtype(present, {limits.kv_dtype});
      c.dims(present, {-1, kvh, -1, hd}, "[batch, kv_heads, past + tokens, head_dim]");
    }
  }
  if (e.tensors.size() != expected) {
    std::string extra;
    for (const EngineTensor& t : e.tensors) {
      bool known = t.name == io.input_ids || t.name == io.position_ids || t.name == io.attention_mask || t.name == io.logits;
      for (int32_t l = 0; l < layers && !known; ++l)
        for (const std::string* p : {&io.past_key, &io.past_value, &io.present_key, &io.present_value})
          known = known || t.name == EngineIoNames::layer(*p, l);
      if (!known) extra += (extra.empty() ? "" : ", ") + t.name;
    }
    c.fail("the engine has tensors the I/O contract does not feed: " + extra + " (num_hidden_layers " + std::to_string(layers) +
           " in config.json implies " + std::to_string(expected) + " tensors)");
  }
  if (mask.max[1] < limits.max_past + limits.max_tokens)
    c.fail(mask.name + ": profile allows at most " + std::to_string(mask.max[1]) + " positions, but past (" +
           std::to_string(limits.max_past) + ") + tokens (" + std::to_string(limits.max_tokens) + ") can reach " +
           std::to_string(limits.max_past + limits.max_tokens));
  if (limits.max_batch < 1 || limits.max_tokens < 1) c.fail(ids.name + ": profile allows no tokens");
  if (pos.max[0] != limits.max_batch || pos.max[1] != limits.max_tokens || mask.max[0] != limits.max_batch)
    c.fail(pos.name + " / " + mask.name + ": profile ranges differ from " + ids.name + "'s");
  if (ids.min[1] > 1) c.fail(ids.name + ": profile needs at least " + std::to_string(ids.min[1]) + " tokens per call; decoding feeds 1");
  if (ids.min[0] > 1) c.fail(ids.name + ": profile needs a batch of at least " + std::to_string(ids.min[0]) + "; a lone request is a batch of 1");
  return limits;
}

}  // namespace neoserve
