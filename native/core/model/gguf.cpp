#include "gguf.h"

#include <algorithm>
#include <cstring>

#include "../error.h"
#include "ggml_blocks.h"
#include "tensor.h"

namespace neoserve {

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::U8: return "u8";
    case GgufType::I8: return "i8";
    case GgufType::U16: return "u16";
    case GgufType::I16: return "i16";
    case GgufType::U32: return "u32";
    case GgufType::I32: return "i32";
    case GgufType::F32: return "f32";
    case GgufType::BOOL: return "bool";
    case GgufType::STRING: return "string";
    case GgufType::ARRAY: return "array";
    case GgufType::U64: return "u64";
    case GgufType::I64: return "i64";
    case GgufType::F64: return "f64";
  }
  return "?";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::U8: case GgufType::I8: case GgufType::U16: case GgufType::I16:
    case GgufType::U32: case GgufType::I32: case GgufType::U64: case GgufType::I64: return true;
    default: return false;
  }
}

namespace {

constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};

// Fixed byte size of a scalar value type; 0 for STRING/ARRAY/unknown.
size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;
  }
}

bool known_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::F64); }

template <typename T>
T load_le(const uint8_t* p) {  // GGUF v2/v3 as written by llama.cpp are little-endian, as are our hosts
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

class Reader {
 public:
  Reader(const uint8_t* bytes, size_t size, const std::string& name) : p_(bytes), size_(size), name_(name) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }
  const uint8_t* here() const { return p_ + pos_; }
  void set_context(std::string c) { context_ = std::move(c); }

  [[noreturn]] void fail(const std::string& what) const { throw_load_error(name_, what); }

  void need(uint64_t n) const {
    if (n > left())
      fail("truncated at byte " + std::to_string(pos_) + " while reading " + context_ + " (needs " + std::to_string(n) +
           " bytes, " + std::to_string(left()) + " left)");
  }
  void skip(uint64_t n) { need(n); pos_ += static_cast<size_t>(n); }
  template <typename T>
  T read() {
    need(sizeof(T));
    T v = load_le<T>(here());
    pos_ += sizeof(T);
    return v;
  }
  std::string_view string() {
    const uint64_t len = read<uint64_t>();
    if (len > left())
      fail("string length " + std::to_string(len) + " at byte " + std::to_string(pos_ - 8) + " runs past the end of the file (" +
           context_ + ")");
    std::string_view s(reinterpret_cast<const char*>(here()), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& name_;
  std::string context_ = "the header";
};

GgufType read_type(Reader& r) {
  const uint32_t t = r.read<uint32_t>();
  if (!known_type(t)) r.fail("unknown metadata value type " + std::to_string(t));
  return static_cast<GgufType>(t);
}

// Walks an array's elements to validate their bounds (strings and nested
// arrays have per-element lengths). Counts are checked against the bytes left
// first, so a forged count of 2^60 fails at once instead of looping.
void skip_array_elements(Reader& r, GgufType elem, uint64_t count, int depth) {
  if (const size_t sz = scalar_size(elem)) {
    uint64_t total = 0;
    if (__builtin_mul_overflow(count, static_cast<uint64_t>(sz), &total) || total > r.left())
      r.fail("array of " + std::to_string(count) + " " + gguf_type_name(elem) + " runs past the end of the file");
    r.skip(total);
    return;
  }
  const uint64_t min_elem = elem == GgufType::STRING ? 8 : 12;  // a length, or a type + a count
  if (count > r.left() / min_elem)
    r.fail("array of " + std::to_string(count) + " " + gguf_type_name(elem) + " runs past the end of the file");
  for (uint64_t i = 0; i < count; ++i) {
    if (elem == GgufType::STRING) {
      r.string();
    } else {
      if (depth + 1 > kGgufMaxArrayNesting) r.fail("arrays nested deeper than " + std::to_string(kGgufMaxArrayNesting));
      const GgufType inner = read_type(r);
      const uint64_t n = r.read<uint64_t>();
      skip_array_elements(r, inner, n, depth + 1);
    }
  }
}

GgufValue read_value(Reader& r, GgufType type) {
  GgufValue v;
  v.type = type;
  switch (type) {
    case GgufType::U8: v.u = r.read<uint8_t>(); break;
    case GgufType::I8: v.i = r.read<int8_t>(); break;
    case GgufType::U16: v.u = r.read<uint16_t>(); break;
    case GgufType::I16: v.i = r.read<int16_t>(); break;
    case GgufType::U32: v.u = r.read<uint32_t>(); break;
    case GgufType::I32: v.i = r.read<int32_t>(); break;
    case GgufType::U64: v.u = r.read<uint64_t>(); break;
    case GgufType::I64: v.i = r.read<int64_t>(); break;
    case GgufType::F32: v.f = r.read<float>(); break;
    case GgufType::F64: v.f = r.read<double>(); break;
    case GgufType::BOOL: v.u = r.read<uint8_t>() != 0; break;
    case GgufType::STRING: v.str = r.string(); break;
    case GgufType::ARRAY: {
      v.arr.elem = read_type(r);
      v.arr.count = r.read<uint64_t>();
      v.arr.data = r.here();
      const size_t start = r.pos();
      skip_array_elements(r, v.arr.elem, v.arr.count, 1);
      v.arr.nbytes = r.pos() - start;
      break;
    }
  }
  // Signed and unsigned integers are also offered in the other field when they
  // fit, so callers ask "is it a non-negative integer" once.
  if (v.is_integer()) {
    if (v.type == GgufType::I8 || v.type == GgufType::I16 || v.type == GgufType::I32 || v.type == GgufType::I64) {
      v.u = v.i >= 0 ? static_cast<uint64_t>(v.i) : 0;
    } else {
      v.i = v.u <= static_cast<uint64_t>(INT64_MAX) ? static_cast<int64_t>(v.u) : -1;
    }
  }
  return v;
}

// A count of entries at least `min_bytes` each must fit in what is left, so a
// forged count fails here instead of driving a loop or an allocation.
void check_count(const Reader& r, uint64_t count, uint64_t min_bytes, const char* what) {
  if (count > r.left() / min_bytes)
    r.fail(std::string(what) + " count " + std::to_string(count) + " exceeds what the remaining " + std::to_string(r.left()) +
           " bytes can hold (truncated or corrupt file)");
}

std::string version_error(uint32_t version) {
  const uint32_t swapped = __builtin_bswap32(version);
  if (swapped == 2 || swapped == 3) return "big-endian GGUF files are not supported";
  return "unsupported GGUF version " + std::to_string(version) + " (supported: 2, 3)";
}

}  // namespace

bool ggml_tensor_bytes(uint32_t ggml_type, const std::vector<uint64_t>& ne, uint64_t& out) {
  uint64_t block_elems = 1, block_bytes = 0;
  switch (ggml_type) {
    case kGgmlF32: block_bytes = 4; break;
    case kGgmlF16: case kGgmlBF16: block_bytes = 2; break;
    default: {
      const GgmlBlockType* b = ggml_block_type_by_number(ggml_type);
      if (!b) return false;
      block_elems = static_cast<uint64_t>(b->block_elems);
      block_bytes = b->block_bytes;
    }
  }
  if (ne.empty()) {  // a scalar
    out = block_bytes;
    return block_elems == 1;
  }
  if (ne[0] % block_elems != 0) return false;
  uint64_t blocks = ne[0] / block_elems;
  for (size_t i = 1; i < ne.size(); ++i)
    if (__builtin_mul_overflow(blocks, ne[i], &blocks)) return false;
  return !__builtin_mul_overflow(blocks, block_bytes, &out);
}

GgufFile parse_gguf(const uint8_t* bytes, size_t size, const std::string& name) {
  Reader r(bytes, size, name);
  GgufFile f;
  if (size < 4 || std::memcmp(bytes, kMagic, 4) != 0) r.fail("not a GGUF file (bad magic)");
  r.skip(4);
  f.version = r.read<uint32_t>();
  if (f.version != 2 && f.version != 3) r.fail(version_error(f.version));
  const uint64_t n_tensors = r.read<uint64_t>();
  const uint64_t n_kv = r.read<uint64_t>();
  // Smallest possible entries: key (8-byte length) + type + 1 byte; name + n_dims + type + offset.
  check_count(r, n_kv, 13, "metadata");
  check_count(r, n_tensors, 24, "tensor");

  for (uint64_t k = 0; k < n_kv; ++k) {
    r.set_context("metadata entry " + std::to_string(k) + " of " + std::to_string(n_kv));
    const std::string_view key = r.string();
    r.set_context("metadata \"" + std::string(key.substr(0, 200)) + "\"");
    const GgufType type = read_type(r);
    GgufValue v = read_value(r, type);
    if (!f.kv.emplace(std::string(key), v).second) r.fail("duplicate metadata key " + std::string(key));
  }

  if (auto it = f.kv.find("general.alignment"); it != f.kv.end()) {
    const GgufValue& a = it->second;
    if (!a.is_integer() || a.i <= 0 || a.i > (1 << 30) || (a.i & (a.i - 1)) != 0)
      r.fail("general.alignment must be a power of two");
    f.alignment = static_cast<uint64_t>(a.i);
  }

  check_count(r, n_tensors, 24, "tensor");
  // No reserve(n_tensors): the vector grows only as entries are actually read.
  for (uint64_t t = 0; t < n_tensors; ++t) {
    r.set_context("tensor info " + std::to_string(t) + " of " + std::to_string(n_tensors));
    GgufTensorInfo info;
    info.name = std::string(r.string());
    const uint32_t n_dims = r.read<uint32_t>();
    if (n_dims == 0 || n_dims > kGgufMaxDims)
      r.fail("tensor " + info.name + " has " + std::to_string(n_dims) + " dimensions (expected 1.." +
             std::to_string(kGgufMaxDims) + ")");
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t n = r.read<uint64_t>();
      if (n > static_cast<uint64_t>(INT64_MAX)) r.fail("tensor " + info.name + " has an absurd dimension " + std::to_string(n));
      info.ne.push_back(n);
    }
    info.ggml_type = r.read<uint32_t>();
    info.offset = r.read<uint64_t>();
    f.tensors.push_back(std::move(info));
  }

  // The data section starts at the next multiple of the alignment.
  f.data_offset = (r.pos() + f.alignment - 1) / f.alignment * f.alignment;
  std::map<std::string_view, const GgufTensorInfo*> by_name;
  struct Span { uint64_t begin, end; const std::string* name; };
  std::vector<Span> spans;
  for (GgufTensorInfo& info : f.tensors) {
    if (!by_name.emplace(info.name, &info).second) r.fail("duplicate tensor " + info.name);
    if (info.offset % f.alignment != 0)
      r.fail("tensor " + info.name + " offset " + std::to_string(info.offset) + " is not a multiple of the alignment " +
             std::to_string(f.alignment));
    uint64_t nbytes = 0;
    if (!ggml_tensor_bytes(info.ggml_type, info.ne, nbytes)) {
      const GgmlBlockType* b = ggml_block_type_by_number(info.ggml_type);
      if (b && !info.ne.empty() && info.ne[0] % static_cast<uint64_t>(b->block_elems) != 0)
        r.fail(std::string(b->name) + " tensor " + info.name + " has " + std::to_string(info.ne[0]) + " columns, not a multiple of " +
               std::to_string(b->block_elems));
      if (b || info.ggml_type == kGgmlF32 || info.ggml_type == kGgmlF16 || info.ggml_type == kGgmlBF16)
        r.fail("tensor " + info.name + " has too many elements");
      continue;  // an unsupported type: the loader reports it by name
    }
    uint64_t begin = 0, end = 0;
    if (__builtin_add_overflow(f.data_offset, info.offset, &begin) || __builtin_add_overflow(begin, nbytes, &end) ||
        end > size)
      r.fail("truncated: data of tensor " + info.name + " (" + std::to_string(nbytes) + " bytes at data offset " +
             std::to_string(info.offset) + ") runs past the end of the file (" + std::to_string(size) + " bytes)");
    info.data = bytes + begin;
    info.nbytes = static_cast<size_t>(nbytes);
    spans.push_back({begin, end, &info.name});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  const Span* reach = nullptr;
  for (const Span& s : spans) {
    if (s.begin == s.end) continue;
    if (reach && s.begin < reach->end) r.fail("tensors " + *reach->name + " and " + *s.name + " overlap in the data section");
    if (!reach || s.end > reach->end) reach = &s;
  }
  return f;
}

std::vector<std::string> gguf_strings(const GgufArray& a) {
  std::vector<std::string> out;
  if (a.elem != GgufType::STRING) return out;
  out.reserve(static_cast<size_t>(a.count));  // bounded: parse_gguf checked count <= nbytes / 8
  const uint8_t* p = a.data;
  for (uint64_t i = 0; i < a.count; ++i) {
    const uint64_t len = load_le<uint64_t>(p);
    out.emplace_back(reinterpret_cast<const char*>(p + 8), static_cast<size_t>(len));
    p += 8 + len;
  }
  return out;
}

bool gguf_int32s(const GgufArray& a, std::vector<int32_t>& out) {
  const size_t sz = scalar_size(a.elem);
  if (sz == 0 || a.elem == GgufType::F32 || a.elem == GgufType::F64 || a.elem == GgufType::BOOL) return false;
  out.resize(static_cast<size_t>(a.count));
  for (uint64_t i = 0; i < a.count; ++i) {
    const uint8_t* p = a.data + i * sz;
    int64_t v = 0;
    switch (a.elem) {
      case GgufType::U8: v = *p; break;
      case GgufType::I8: v = static_cast<int8_t>(*p); break;
      case GgufType::U16: v = load_le<uint16_t>(p); break;
      case GgufType::I16: v = load_le<int16_t>(p); break;
      case GgufType::U32: v = load_le<uint32_t>(p); break;
      case GgufType::I32: v = load_le<int32_t>(p); break;
      case GgufType::U64: { const uint64_t u = load_le<uint64_t>(p); v = u > INT32_MAX ? INT64_MAX : static_cast<int64_t>(u); break; }
      case GgufType::I64: v = load_le<int64_t>(p); break;
      default: return false;
    }
    if (v < INT32_MIN || v > INT32_MAX) return false;
    out[static_cast<size_t>(i)] = static_cast<int32_t>(v);
  }
  return true;
}

}  // namespace neoserve
