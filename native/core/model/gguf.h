// The GGUF container (versions 2 and 3, little-endian): header, typed
// metadata key/values, tensor infos, aligned data section. This layer knows
// nothing about Llama; gguf_loader.cpp maps it to ModelWeights.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace neoserve {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
const char* gguf_type_name(GgufType t);

// ggml's float tensor types; the block types are in ggml_blocks.h. Any other
// number is reported, not guessed at.
enum GgmlType : uint32_t { kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ8_0 = 8, kGgmlBF16 = 30 };

// An array value, validated at parse time but decoded only on request:
// a 150k-token vocabulary stays bytes until the tokenizer asks for it.
struct GgufArray {
  GgufType elem = GgufType::U8;
  uint64_t count = 0;
  const uint8_t* data = nullptr;  // first element
  size_t nbytes = 0;
};

struct GgufValue {
  GgufType type = GgufType::U8;
  uint64_t u = 0;  // unsigned integers and BOOL
  int64_t i = 0;   // signed integers
  double f = 0;    // F32, F64
  std::string_view str;
  GgufArray arr;

  bool is_integer() const;
  bool is_float() const { return type == GgufType::F32 || type == GgufType::F64; }
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // ggml order: ne[0] is the innermost (contiguous) dimension
  uint32_t ggml_type = 0;
  uint64_t offset = 0;       // from the start of the data section
  // Filled for supported types only (nbytes == 0 and data == nullptr otherwise).
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
};

struct GgufFile {
  uint32_t version = 0;
  std::map<std::string, GgufValue, std::less<>> kv;
  std::vector<GgufTensorInfo> tensors;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;  // start of the data section in the file
};

constexpr uint32_t kGgufMaxDims = 4;       // GGML_MAX_DIMS
constexpr int kGgufMaxArrayNesting = 8;    // arrays of arrays are legal; bound the recursion

// Parses the container held in `bytes`; strings and arrays point into it.
// Checks every length, count and tensor byte range against the buffer before
// use, so absurd counts fail fast without allocating. Throws
// Error(ModelLoadFailed, "<name>: <what>").
GgufFile parse_gguf(const uint8_t* bytes, size_t size, const std::string& name);

// Bytes of a tensor of a supported ggml type; false for other types.
bool ggml_tensor_bytes(uint32_t ggml_type, const std::vector<uint64_t>& ne, uint64_t& out);

// Decoders for validated arrays (they trust parse_gguf's bounds checks).
std::vector<std::string> gguf_strings(const GgufArray& a);
// Integer arrays of any integer element type, each checked to fit in int32.
bool gguf_int32s(const GgufArray& a, std::vector<int32_t>& out);

}  // namespace neoserve
