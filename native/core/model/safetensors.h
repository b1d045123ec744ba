// The safetensors container: an 8-byte little-endian header length N, N bytes
// of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
// then the tensor bytes, offsets relative to the end of the header.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tensor.h"

namespace neoserve {

// safetensors' own limit: a header is JSON text, never gigabytes.
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

// Parses a safetensors image held in memory (a mapping, or a fuzzer's buffer).
// Tensors keep their stored names and point into `bytes`. Every byte range is
// checked to lie inside the data section without overlap. Throws
// Error(ModelLoadFailed, "<name>: <what>").
std::vector<Tensor> parse_safetensors(const uint8_t* bytes, size_t size, const std::string& name);

}  // namespace neoserve
