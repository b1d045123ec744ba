// The one error type native/core throws. The binding turns it into a typed JS
// error whose `code` is the string of ErrorCode (see src/errors.ts).
#pragma once
#include <stdexcept>
#include <string>

namespace neoserve {

enum class ErrorCode {
  InvalidRequest,       // a parameter the caller gave is wrong
  ModelLoadFailed,      // a model file or directory is missing, malformed or inconsistent
  ProviderUnavailable,  // an engine cannot run here (missing library, device)
  QueueFull,            // the scheduler's waiting queue is at max_queue_size
  Internal,             // a bug: an invariant of our own was broken
};

const char* error_code_name(ErrorCode code);

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
