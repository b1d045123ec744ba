// Counter-based randomness for sampling: a draw is a pure function of
// (seed, step), so a request's tokens never depend on the batch it shares,
// the thread that runs it, or how many draws other requests made.
#pragma once
#include <cstdint>

namespace neoserve {

// The splitmix64 finalizer (Stafford's Mix13): a bijective 64-bit mixer.
constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// 64 random bits for draw number `step` of the stream `seed`. For a fixed
// seed, consecutive steps walk the splitmix64 sequence seeded by mix64(seed).
constexpr uint64_t counter_hash(uint64_t seed, uint64_t step) {
  constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;
  return mix64(mix64(seed ^ 0x6A09E667F3BCC909ULL) + (step + 1) * kGolden);
}

// Uniform double in [0, 1) with 53 random bits.
constexpr double counter_uniform(uint64_t seed, uint64_t step) {
  return static_cast<double>(counter_hash(seed, step) >> 11) * 0x1.0p-53;
}

}  // namespace neoserve
