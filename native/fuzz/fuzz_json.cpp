// JSON reader, then the config.json interpretation on top of it. Malformed
// input may only ever raise neoserve::Error; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/json/json.h"
#include "core/model/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    neoserve::json::Value v = neoserve::json::parse(text);
    // Walk the accessors the loaders use.
    if (const neoserve::json::Value* x = v.find("weight_map"))
      if (x->is_object())
        for (const auto& m : x->as_object()) (void)m.second.is_string();
  } catch (const neoserve::Error&) {
  }
  try {
    neoserve::LlamaConfig c = neoserve::parse_hf_config(text, "fuzz");
    c.validate("fuzz");
    (void)neoserve::rope_inv_freq(c);
  } catch (const neoserve::Error&) {
  }
  return 0;
}
