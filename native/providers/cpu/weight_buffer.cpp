#include "weight_buffer.h"

#include <sys/mman.h>

#include <new>

namespace neoserve::cpu {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}

void UnmapWeights::operator()(uint8_t* p) const {
  if (p) ::munmap(p, bytes);
}

WeightBytes allocate_weights(size_t bytes) {
  const size_t n = bytes == 0 ? 1 : bytes;
  // Map an extra huge page's worth and trim both ends so the rest starts on a 2 MiB boundary.
  void* raw = ::mmap(nullptr, n + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (base + kHugePage - 1) / kHugePage * kHugePage;
  const size_t page = 4096;
  const uintptr_t end = (aligned + n + page - 1) / page * page;
  if (aligned > base) ::munmap(raw, aligned - base);
  if (base + n + kHugePage > end) ::munmap(reinterpret_cast<void*>(end), base + n + kHugePage - end);
  ::madvise(reinterpret_cast<void*>(aligned), end - aligned, MADV_HUGEPAGE);
  return WeightBytes(reinterpret_cast<uint8_t*>(aligned), UnmapWeights{end - aligned});
}

}  // namespace neoserve::cpu
