#include "json.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace neoserve::json {

const char* type_name(Type t) {
  switch (t) {
    case Type::Null: return "null";
    case Type::Bool: return "boolean";
    case Type::Int: return "integer";
    case Type::Double: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "?";
}

// --- Value -----------------------------------------------------------------

Value Value::make_bool(bool b) { Value v; v.type_ = Type::Bool; v.bool_ = b; return v; }
Value Value::make_int(int64_t i) { Value v; v.type_ = Type::Int; v.int_ = i; return v; }
Value Value::make_double(double d) { Value v; v.type_ = Type::Double; v.double_ = d; return v; }
Value Value::make_string(std::string s) { Value v; v.type_ = Type::String; v.string_ = std::move(s); return v; }
Value Value::make_array(std::vector<Value> items) { Value v; v.type_ = Type::Array; v.array_ = std::move(items); return v; }

Value Value::make_object(std::vector<Member> members) {
  // Sorting once makes lookups O(log n) and exposes duplicates as neighbours;
  // a duplicate key is ambiguous (which tensor is "the" one?), so it is an error.
  std::stable_sort(members.begin(), members.end(), [](const Member& a, const Member& b) { return a.first < b.first; });
  for (size_t i = 1; i < members.size(); ++i)
    if (members[i].first == members[i - 1].first) throw Error("duplicate key \"" + members[i].first + "\"");
  Value v;
  v.type_ = Type::Object;
  v.object_ = std::move(members);
  return v;
}

static void expect(const Value& v, Type want) {
  if (v.type() != want) throw Error(std::string("expected ") + type_name(want) + ", got " + type_name(v.type()));
}

bool Value::as_bool() const { expect(*this, Type::Bool); return bool_; }
int64_t Value::as_int() const { expect(*this, Type::Int); return int_; }
double Value::as_double() const {
  if (type_ == Type::Int) return static_cast<double>(int_);
  expect(*this, Type::Double);
  return double_;
}
const std::string& Value::as_string() const { expect(*this, Type::String); return string_; }
const std::vector<Value>& Value::as_array() const { expect(*this, Type::Array); return array_; }
const std::vector<Member>& Value::as_object() const { expect(*this, Type::Object); return object_; }

const Value* Value::find(std::string_view key) const {
  if (type_ != Type::Object) return nullptr;
  auto it = std::lower_bound(object_.begin(), object_.end(), key,
                             [](const Member& m, std::string_view k) { return std::string_view(m.first) < k; });
  return (it != object_.end() && it->first == key) ? &it->second : nullptr;
}

const Value& Value::at(std::string_view key) const {
  expect(*this, Type::Object);
  const Value* v = find(key);
  if (!v) throw Error("missing key \"" + std::string(key) + "\"");
  return *v;
}

// --- Parser ------------------------------------------------------------------

namespace {

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Value parse_document() {
    skip_ws();
    Value v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected data after the JSON value");
    return v;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("invalid JSON at byte " + std::to_string(pos_) + ": " + what);
  }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }

  void skip_ws() {
    while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }

  void expect_literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) fail("invalid literal");
    pos_ += lit.size();
  }

  Value parse_value(int depth) {
    if (at_end()) fail("unexpected end of input");
    switch (s_[pos_]) {
      case '{': return parse_object(depth + 1);
      case '[': return parse_array(depth + 1);
      case '"': return Value::make_string(parse_string());
      case 't': expect_literal("true"); return Value::make_bool(true);
      case 'f': expect_literal("false"); return Value::make_bool(false);
      case 'n': expect_literal("null"); return Value();
      default:
        if (s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9')) return parse_number();
        fail(std::string("unexpected character '") + printable(s_[pos_]) + "'");
    }
  }

  static std::string printable(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    static const char* hex = "0123456789abcdef";
    return std::string("\\x") + hex[u >> 4] + hex[u & 15];
  }

  void check_depth(int depth) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
  }

  Value parse_object(int depth) {
    check_depth(depth);
    const size_t start = pos_;
    ++pos_;  // '{'
    std::vector<Member> members;
    skip_ws();
    if (peek() == '}') { ++pos_; return Value::make_object(std::move(members)); }
    for (;;) {
      skip_ws();
      if (peek() != '"') fail("expected a string key");
      std::string key = parse_string();
      skip_ws();
      if (peek() != ':') fail("expected ':' after key");
      ++pos_;
      skip_ws();
      Value v = parse_value(depth);
      members.emplace_back(std::move(key), std::move(v));
      skip_ws();
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == '}') { ++pos_; break; }
      fail("expected ',' or '}' in object");
    }
    try {
      return Value::make_object(std::move(members));
    } catch (const Error& e) {
      pos_ = start;
      fail(std::string(e.what()) + " in object");
    }
  }

  Value parse_array(int depth) {
    check_depth(depth);
    ++pos_;  // '['
    std::vector<Value> items;
    skip_ws();
    if (peek() == ']') { ++pos_; return Value::make_array(std::move(items)); }
    for (;;) {
      skip_ws();
      items.push_back(parse_value(depth));
      skip_ws();
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == ']') { ++pos_; break; }
      fail("expected ',' or ']' in array");
    }
    return Value::make_array(std::move(items));
  }

  Value parse_number() {
    // Validate the RFC 8259 grammar first: from_chars alone would accept
    // "01", "1." or "+1" variants and hex-ish forms we must reject.
    const size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9') ++pos_;
    } else {
      fail("invalid number");
    }
    bool integral = true;
    if (peek() == '.') {
      integral = false;
      ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("invalid number: digit expected after '.'");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!(peek() >= '0' && peek() <= '9')) fail("invalid number: digit expected in exponent");
      while (peek() >= '0' && peek() <= '9') ++pos_;
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    if (integral) {
      int64_t i = 0;
      auto r = std::from_chars(first, last, i);
      if (r.ec == std::errc() && r.ptr == last) return Value::make_int(i);
      // Integers beyond int64 fall through to double, as JavaScript would read them.
    }
    double d = 0.0;
    auto r = std::from_chars(first, last, d);
    if (r.ec == std::errc::result_out_of_range) {
      // Underflow to zero is harmless; overflow to infinity is not a number we can hold.
      if (decimal_magnitude(first, last) < 0) return Value::make_double(*first == '-' ? -0.0 : 0.0);
      pos_ = start;
      fail("number out of range");
    }
    if (r.ec != std::errc() || r.ptr != last || !std::isfinite(d)) { pos_ = start; fail("invalid number"); }
    return Value::make_double(d);
  }

  // Power of ten of the leading significant digit of a grammar-checked number,
  // saturated; only its sign matters (to tell underflow from overflow).
  static int64_t decimal_magnitude(const char* p, const char* end) {
    if (*p == '-') ++p;
    int64_t int_digits = 0, leading_frac_zeros = 0;
    bool seen_nonzero = false;
    for (; p < end && *p >= '0' && *p <= '9'; ++p) {
      if (*p != '0') seen_nonzero = true;
      if (seen_nonzero) ++int_digits;
    }
    if (p < end && *p == '.')
      for (++p; p < end && *p >= '0' && *p <= '9'; ++p) {
        if (*p != '0') seen_nonzero = true;
        if (!seen_nonzero) ++leading_frac_zeros;
      }
    int64_t exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
      ++p;
      const bool neg = *p == '-';
      if (*p == '+' || *p == '-') ++p;
      for (; p < end; ++p) exp = std::min<int64_t>(exp * 10 + (*p - '0'), int64_t{1} << 40);
      if (neg) exp = -exp;
    }
    if (!seen_nonzero) return -1;  // zero never overflows
    return (int_digits > 0 ? int_digits - 1 : -leading_frac_zeros - 1) + exp;
  }

  unsigned parse_hex4() {
    if (s_.size() - pos_ < 4) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else fail("invalid hex digit in \\u escape");
    }
    pos_ += 4;
    return v;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  // Length of the well-formed UTF-8 sequence at pos_ (Unicode table 3-7), or 0.
  size_t utf8_sequence_length() const {
    const auto b = [&](size_t i) { return static_cast<unsigned char>(s_[pos_ + i]); };
    const size_t left = s_.size() - pos_;
    const unsigned char c = b(0);
    auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xbf) {
      return i < left && b(i) >= lo && b(i) <= hi;
    };
    if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
    if (c == 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
    if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) return cont(1) && cont(2) ? 3 : 0;
    if (c == 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;  // no UTF-16 surrogates
    if (c == 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
    if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
    if (c == 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
    return 0;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated string");
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') { ++pos_; return out; }
      if (c < 0x20) fail("control character in string");
      if (c == '\\') {
        ++pos_;
        if (at_end()) fail("unterminated escape");
        const char e = s_[pos_++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            uint32_t cp = parse_hex4();
            if (cp >= 0xdc00 && cp <= 0xdfff) fail("unpaired low surrogate in \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
              if (s_.substr(pos_, 2) != "\\u") fail("high surrogate not followed by a \\u low surrogate");
              pos_ += 2;
              const uint32_t lo = parse_hex4();
              if (lo < 0xdc00 || lo > 0xdfff) fail("high surrogate not followed by a low surrogate");
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            append_utf8(out, cp);
            break;
          }
          default: --pos_; fail("invalid escape '\\" + printable(e) + "'");
        }
        continue;
      }
      if (c < 0x80) { out += static_cast<char>(c); ++pos_; continue; }
      const size_t n = utf8_sequence_length();
      if (n == 0) fail("invalid UTF-8 in string");
      out.append(s_.data() + pos_, n);
      pos_ += n;
    }
  }
};

}  // namespace

Value parse(std::string_view text) { return Parser(text).parse_document(); }

}  // namespace neoserve::json
