// Native values → JS values, for the few shapes the binding hands back.
#pragma once
#include <napi.h>

#include <vector>

namespace neoserve::binding {

// A JS array of numbers or strings, from a vector of them.
template <typename T>
Napi::Array js_array(Napi::Env env, const std::vector<T>& values) {
  auto out = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) out.Set(static_cast<uint32_t>(i), values[i]);
  return out;
}

}  // namespace neoserve::binding
