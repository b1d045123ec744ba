// Memory for the weights a provider converts at load: anonymous pages,
// 2 MiB-aligned and advised as transparent huge pages, so writing a gigabyte
// of panels takes hundreds of page faults rather than hundreds of thousands,
// and decode's weight stream walks few TLB entries. Where the kernel gives no
// huge pages the memory is ordinary pages, no different from new[].
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace neoserve::cpu {

struct UnmapWeights {
  size_t bytes = 0;
  void operator()(uint8_t* p) const;
};
using WeightBytes = std::unique_ptr<uint8_t[], UnmapWeights>;

// Uninitialized; throws std::bad_alloc when the mapping fails.
WeightBytes allocate_weights(size_t bytes);

}  // namespace neoserve::cpu
