// CRC-32C (Castagnoli): the weight cache's per-piece check. With SSE4.2 it
// runs at memory speed (crc32 instructions over three interleaved streams);
// elsewhere a table gives the same values, slower.
#pragma once
#include <cstddef>
#include <cstdint>

namespace neoserve::cpu {

// CRC-32C of each third of p[0, n) (the thirds cut at multiples of 8 bytes,
// the last taking the rest): three independent chains, so the instruction's
// latency overlaps. Hardware or table, the same three values.
struct Crc3 {
  uint32_t a, b, c;
};
Crc3 crc32c_thirds(const uint8_t* p, size_t n);

// Plain CRC-32C of p[0, n) by the table ("123456789" → 0xE3069283).
uint32_t crc32c_table(const uint8_t* p, size_t n);

}  // namespace neoserve::cpu
