// Reading plain JS objects into the core's option and request structs. Only
// types are converted here: an absent field keeps the struct's own default,
// and ranges are checked by the core (validate(), Scheduler::submit).
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/options.h"

namespace neoserve::binding {

inline bool absent(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

inline double number_or(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (absent(v)) return fallback;
  if (!v.IsNumber()) throw_invalid(std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline int32_t int_or(const Napi::Object& o, const char* key, int32_t fallback) {
  const double d = number_or(o, key, fallback);
  if (!(d >= -2147483648.0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int64_t>(d)))
    throw_invalid(std::string(key) + " must be a 32-bit integer, got " + std::to_string(d));
  return static_cast<int32_t>(d);
}

inline std::string string_or(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (absent(v)) return fallback;
  if (!v.IsString()) throw_invalid(std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

inline bool bool_or(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (absent(v)) return fallback;
  if (!v.IsBoolean()) throw_invalid(std::string(key) + " must be true or false");
  return v.As<Napi::Boolean>().Value();
}

inline std::vector<int32_t> int_array(const Napi::Value& v, const char* what) {
  std::vector<int32_t> out;
  if (absent(v)) return out;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    auto arr = v.As<Napi::Int32Array>();
    out.assign(arr.Data(), arr.Data() + arr.ElementLength());
    return out;
  }
  if (!v.IsArray()) throw_invalid(std::string(what) + " must be an array of integers");
  auto arr = v.As<Napi::Array>();
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    if (!e.IsNumber()) throw_invalid(std::string(what) + "[" + std::to_string(i) + "] must be an integer");
    const double d = e.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int32_t>(d)))
      throw_invalid(std::string(what) + "[" + std::to_string(i) + "] must be a 32-bit integer");
    out.push_back(static_cast<int32_t>(d));
  }
  return out;
}

// Fills a LoadOptions from a JS object through the core's option table.
struct JsOptionReader {
  const Napi::Object& o;
  void integer(const char* name, int32_t& v, Range, const char*) const { v = int_or(o, name, v); }
  void number(const char* name, double& v, Range, const char*) const { v = number_or(o, name, v); }
  void bytes(const char* name, size_t& v, Range, const char*) const {
    const double d = number_or(o, name, static_cast<double>(v));
    // Only a whole, non-negative number of bytes converts; its range is the core's to check.
    if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d)))
      throw_invalid(std::string(name) + " must be a whole number of bytes, got " + std::to_string(d));
    v = static_cast<size_t>(d);
  }
  void text(const char* name, std::string& v, const char*) const { v = string_or(o, name, v); }
  template <typename T>
  void choice(const char* name, T& v, Choices<T> choices, const char*) const {
    Napi::Value given = o.Get(name);
    if (absent(given)) return;
    const std::string label = string_or(o, name, "");
    for (const auto& [l, value] : choices)
      if (label == l) {
        v = value;
        return;
      }
    throw_not_a_choice(name, label, choices);
  }
};

}  // namespace neoserve::binding
