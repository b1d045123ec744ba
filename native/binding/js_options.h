// Reading plain JS option objects into native structs, with clear errors for wrong types.
#pragma once
#include <napi.h>

#include <string>

#include "core/error.h"

namespace neoserve::binding {

inline Napi::Value field(const Napi::Object& o, const char* key) { return o.Get(key); }

inline double number_or(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw_invalid(std::string(key) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

inline int32_t int_or(const Napi::Object& o, const char* key, int32_t fallback) {
  const double d = number_or(o, key, fallback);
  if (d != static_cast<double>(static_cast<int64_t>(d)) || d < -2147483648.0 || d > 2147483647.0)
    throw_invalid(std::string(key) + " must be an integer");
  return static_cast<int32_t>(d);
}

inline std::string string_or(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) throw_invalid(std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

inline std::vector<int32_t> int_array(const Napi::Value& v, const char* what) {
  std::vector<int32_t> out;
  if (v.IsUndefined() || v.IsNull()) return out;
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

}  // namespace neoserve::binding
