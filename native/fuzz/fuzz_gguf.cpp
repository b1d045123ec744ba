// The whole GGUF path: container, llama metadata, name mapping, shape checks
// and the Q/K un-permute. Accepted tensors must lie inside the buffer.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/model/model_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto w = neoserve::load_gguf_buffer(data, size, "fuzz");
    volatile uint8_t sink = 0;
    for (const auto& [name, t] : w->tensors)
      if (t.nbytes > 0) sink = sink ^ t.data[0] ^ t.data[t.nbytes - 1];
    (void)neoserve::rope_inv_freq(w->config);
  } catch (const neoserve::Error&) {
  }
  return 0;
}
