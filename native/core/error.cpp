#include "error.h"

namespace neoserve {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidRequest: return "invalid_request";
    case ErrorCode::ModelLoadFailed: return "model_load_failed";
    case ErrorCode::ProviderUnavailable: return "provider_unavailable";
    case ErrorCode::QueueFull: return "queue_full";
    case ErrorCode::Internal: return "internal";
  }
  return "internal";
}

}  // namespace neoserve
