// A small strict JSON reader (RFC 8259) for the files a checkpoint carries:
// config.json, safetensors headers, model.safetensors.index.json. Untrusted
// input: it bounds nesting, validates UTF-8, keeps integers exact, and reports
// every problem as json::Error with the byte offset, never a crash.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.h"

namespace neoserve::json {

// Parse and access errors. A ModelLoadFailed without a path: loaders catch it
// and rethrow with the file name in front (see throw_load_error).
class Error : public neoserve::Error {
 public:
  explicit Error(const std::string& what) : neoserve::Error(ErrorCode::ModelLoadFailed, what) {}
};

enum class Type { Null, Bool, Int, Double, String, Array, Object };
const char* type_name(Type t);

class Value;
using Member = std::pair<std::string, Value>;

class Value {
 public:
  Value() = default;
  static Value make_bool(bool b);
  static Value make_int(int64_t i);
  static Value make_double(double d);
  static Value make_string(std::string s);
  static Value make_array(std::vector<Value> items);
  static Value make_object(std::vector<Member> members);  // throws json::Error on a duplicate key

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_int() const { return type_ == Type::Int; }
  bool is_number() const { return type_ == Type::Int || type_ == Type::Double; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // Typed accessors: each throws json::Error "expected <type>, got <type>".
  bool as_bool() const;
  int64_t as_int() const;    // an integral number only (1.0 and 1e3 are doubles: rejected)
  double as_double() const;  // any number
  const std::string& as_string() const;
  const std::vector<Value>& as_array() const;
  const std::vector<Member>& as_object() const;  // sorted by key

  // Object lookup: nullptr when the key is absent (or this is not an object).
  const Value* find(std::string_view key) const;
  // Object lookup that throws json::Error "missing key <key>" when absent.
  const Value& at(std::string_view key) const;

 private:
  Type type_ = Type::Null;
  bool bool_ = false;
  int64_t int_ = 0;
  double double_ = 0.0;
  std::string string_;
  std::vector<Value> array_;
  std::vector<Member> object_;  // sorted by key for lookup and duplicate detection
};

constexpr int kMaxDepth = 64;

// Parses exactly one JSON value (surrounded by optional whitespace).
// Throws json::Error "invalid JSON at byte N: <what>".
Value parse(std::string_view text);

}  // namespace neoserve::json
