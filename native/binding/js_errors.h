// neoserve::Error → a JS Error with a `code` the TypeScript layer maps to its typed class.
#pragma once
#include <napi.h>

#include <exception>

#include "core/error.h"

namespace neoserve::binding {

inline Napi::Error to_js_error(Napi::Env env, const std::exception& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("code", Napi::String::New(env, error_code_name(error_code_of(e))));
  return err;
}

// Runs `fn`, turning a C++ exception into a thrown JS error so none crosses N-API unchecked.
template <typename Fn>
auto guarded(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw to_js_error(env, e);
  }
}

}  // namespace neoserve::binding
