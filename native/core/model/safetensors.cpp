#include "safetensors.h"

#include <algorithm>
#include <string_view>

#include "../error.h"
#include "../json/json.h"
#include "shape_text.h"

namespace neoserve {

namespace {

constexpr size_t kMaxRank = 8;

bool parse_dtype(const std::string& s, DType& out, size_t& elem_bytes) {
  if (s == "F32") { out = DType::F32; elem_bytes = 4; return true; }
  if (s == "F16") { out = DType::F16; elem_bytes = 2; return true; }
  if (s == "BF16") { out = DType::BF16; elem_bytes = 2; return true; }
  return false;
}

struct Span {
  uint64_t begin, end;
  const std::string* tensor;
};

Tensor parse_entry(const std::string& tensor_name, const json::Value& info, const uint8_t* data, uint64_t data_size,
                   const std::string& file, Span& span) {
  const std::string where = "tensor " + tensor_name + ": ";
  try {
    const std::string& dtype_text = info.at("dtype").as_string();
    Tensor t;
    t.name = tensor_name;
    size_t elem_bytes = 0;
    if (!parse_dtype(dtype_text, t.dtype, elem_bytes))
      throw_load_error(file, "unsupported dtype " + dtype_text + " for tensor " + tensor_name + " (supported: F32, F16, BF16)");

    const auto& dims = info.at("shape").as_array();
    if (dims.size() > kMaxRank) throw_load_error(file, where + "rank " + std::to_string(dims.size()) + " is too high");
    uint64_t numel = 1;
    for (const json::Value& d : dims) {
      const int64_t n = d.as_int();
      if (n < 0) throw_load_error(file, where + "negative dimension in shape");
      // Overflow-checked: a shape claiming 2^70 elements must fail here, not wrap.
      if (__builtin_mul_overflow(numel, static_cast<uint64_t>(n), &numel))
        throw_load_error(file, where + "shape has too many elements");
      t.shape.push_back(n);
    }
    uint64_t expect_bytes = 0;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(elem_bytes), &expect_bytes))
      throw_load_error(file, where + "shape " + shape_text(t.shape) + " has too many elements");

    const auto& offsets = info.at("data_offsets").as_array();
    if (offsets.size() != 2) throw_load_error(file, where + "data_offsets must be [begin, end]");
    const int64_t begin = offsets[0].as_int(), end = offsets[1].as_int();
    if (begin < 0 || end < 0) throw_load_error(file, where + "negative data_offsets");
    if (end < begin)
      throw_load_error(file, where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] run backwards");
    if (static_cast<uint64_t>(end) > data_size)
      throw_load_error(file, where + "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                                 "] past the end of the data (" + std::to_string(data_size) + " bytes)");
    const uint64_t have = static_cast<uint64_t>(end - begin);
    if (have != expect_bytes)
      throw_load_error(file, where + "data_offsets cover " + std::to_string(have) + " bytes, but " + dtype_text +
                                 " shape " + shape_text(t.shape) + " needs " + std::to_string(expect_bytes));
    t.data = data + begin;
    t.nbytes = static_cast<size_t>(have);
    span = Span{static_cast<uint64_t>(begin), static_cast<uint64_t>(end), nullptr};
    return t;
  } catch (const json::Error& e) {
    throw_load_error(file, where + e.what());
  }
}

}  // namespace

std::vector<Tensor> parse_safetensors(const uint8_t* bytes, size_t size, const std::string& name) {
  if (size < 8) throw_load_error(name, "file is " + std::to_string(size) + " bytes, too short for a safetensors header");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian on any host
  if (header_len > size - 8)
    throw_load_error(name, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                               std::to_string(size) + " bytes)");
  if (header_len > kSafetensorsMaxHeaderBytes)
    throw_load_error(name, "header length " + std::to_string(header_len) + " exceeds the safetensors limit");

  json::Value header;
  try {
    header = json::parse(std::string_view(reinterpret_cast<const char*>(bytes + 8), static_cast<size_t>(header_len)));
  } catch (const json::Error& e) {
    throw_load_error(name, std::string("header: ") + e.what());
  }
  if (!header.is_object()) throw_load_error(name, "header is not a JSON object");

  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  std::vector<Tensor> tensors;
  std::vector<Span> spans;
  for (const auto& [tensor_name, info] : header.as_object()) {
    if (tensor_name == "__metadata__") continue;  // free-form string map; nothing we need
    if (!info.is_object()) throw_load_error(name, "tensor " + tensor_name + ": entry is not an object");
    Span span{};
    tensors.push_back(parse_entry(tensor_name, info, data, data_size, name, span));
    span.tensor = &tensor_name;
    spans.push_back(span);
  }

  // Two tensors sharing bytes would let writes through one view (none today,
  // but a forged file could rely on it) and always indicate a broken writer.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  const Span* reach = nullptr;  // the non-empty span seen so far that ends last
  for (const Span& cur : spans) {
    if (cur.begin == cur.end) continue;  // empty tensors own no bytes
    if (reach && cur.begin < reach->end)
      throw_load_error(name, "tensors " + *reach->tensor + " and " + *cur.tensor + " overlap in the data section");
    if (!reach || cur.end > reach->end) reach = &cur;
  }
  return tensors;
}

}  // namespace neoserve
