// The one error type native/core throws. Its code crosses every boundary as
// the same value: the TensorRT provider's C entry (as 1 + the number), and the
// binding (as the name, which src/errors.ts maps to a typed class; a test
// checks that both sides list the same names).
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

namespace neoserve {

// Values are fixed: they cross the TensorRT library boundary as numbers.
enum class ErrorCode : int32_t {
  InvalidRequest = 0,       // a parameter the caller gave is wrong
  ModelLoadFailed = 1,      // a model file or directory is missing, malformed or inconsistent
  ProviderUnavailable = 2,  // an engine cannot run here (missing library, device)
  QueueFull = 3,            // the scheduler's waiting queue is at max_queue_size
  Internal = 4,             // a bug: an invariant of our own was broken
  Disposed = 5,             // the model was disposed: it takes no more requests
  OutOfMemory = 6,          // weights, KV cache or buffers do not fit in host or device memory
};
inline constexpr int32_t kErrorCodeCount = 7;
static_assert(static_cast<int32_t>(ErrorCode::OutOfMemory) + 1 == kErrorCodeCount, "kErrorCodeCount: one past the last code");

// "invalid_request", ...: the `code` of the JS error.
const char* error_code_name(ErrorCode code);
// The code numbered `value`, or Internal for a number no code has.
ErrorCode error_code_from_int(int32_t value);

// The code of any exception: an Error's own, OutOfMemory for std::bad_alloc
// (memory that does not fit is one code on every path), Internal otherwise.
ErrorCode error_code_of(const std::exception& e);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// Load errors always name the file: "<path>: <what is wrong>".
[[noreturn]] inline void throw_load_error(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::ModelLoadFailed, path + ": " + what);
}

[[noreturn]] inline void throw_invalid(const std::string& what) { throw Error(ErrorCode::InvalidRequest, what); }

}  // namespace neoserve
