#include "crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define NEOSERVE_CRC_X86 1
#endif

namespace neoserve::cpu {
namespace {

constexpr std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli polynomial
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kTable = make_table();

uint32_t table_update(uint32_t crc, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) crc = kTable[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

#ifdef NEOSERVE_CRC_X86
__attribute__((target("sse4.2"))) Crc3 thirds_sse42(const uint8_t* p, size_t n, size_t third) {
  uint64_t a = 0xffffffffu, b = 0xffffffffu, c = 0xffffffffu;
  const uint8_t *pa = p, *pb = p + third, *pc = p + 2 * third;
  for (size_t i = 0; i < third; i += 8) {
    uint64_t x, y, z;
    std::memcpy(&x, pa + i, 8);
    std::memcpy(&y, pb + i, 8);
    std::memcpy(&z, pc + i, 8);
    a = _mm_crc32_u64(a, x);
    b = _mm_crc32_u64(b, y);
    c = _mm_crc32_u64(c, z);
  }
  uint32_t tail = static_cast<uint32_t>(c);
  for (const uint8_t* q = pc + third; q < p + n; ++q) tail = _mm_crc32_u8(tail, *q);
  return {~static_cast<uint32_t>(a), ~static_cast<uint32_t>(b), ~tail};
}

bool has_sse42() {
  static const bool yes = __builtin_cpu_supports("sse4.2");
  return yes;
}
#endif

}  // namespace

uint32_t crc32c_table(const uint8_t* p, size_t n) { return ~table_update(0xffffffffu, p, n); }

Crc3 crc32c_thirds(const uint8_t* p, size_t n) {
  const size_t third = (n / 3) & ~size_t{7};
#ifdef NEOSERVE_CRC_X86
  if (has_sse42()) return thirds_sse42(p, n, third);
#endif
  return {crc32c_table(p, third), crc32c_table(p + third, third), crc32c_table(p + 2 * third, n - 2 * third)};
}

}  // namespace neoserve::cpu
