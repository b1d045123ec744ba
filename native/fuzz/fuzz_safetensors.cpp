// safetensors container parsing: every tensor it accepts must lie inside the buffer.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "core/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto tensors = neoserve::parse_safetensors(data, size, "fuzz");
    volatile uint8_t sink = 0;
    for (const neoserve::Tensor& t : tensors)
      if (t.nbytes > 0) sink = sink ^ t.data[0] ^ t.data[t.nbytes - 1];  // ASan checks the claimed range
  } catch (const neoserve::Error&) {
  }
  return 0;
}
