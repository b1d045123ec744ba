#include "error.h"

#include <new>

namespace neoserve {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidRequest: return "invalid_request";
    case ErrorCode::ModelLoadFailed: return "model_load_failed";
    case ErrorCode::ProviderUnavailable: return "provider_unavailable";
    case ErrorCode::QueueFull: return "queue_full";
    case ErrorCode::Internal: return "internal";
    case ErrorCode::Disposed: return "disposed";
    case ErrorCode::OutOfMemory: return "out_of_memory";
  }
  return "internal";
}

ErrorCode error_code_of(const std::exception& e) {
  if (const auto* error = dynamic_cast<const Error*>(&e)) return error->code();
  if (dynamic_cast<const std::bad_alloc*>(&e)) return ErrorCode::OutOfMemory;
  return ErrorCode::Internal;
}

ErrorCode error_code_from_int(int32_t value) {
  return value >= 0 && value < kErrorCodeCount ? static_cast<ErrorCode>(value) : ErrorCode::Internal;
}

}  // namespace neoserve
