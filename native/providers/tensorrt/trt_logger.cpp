#include "trt_logger.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace neoserve::trt {

namespace {
thread_local std::string last_error;
}  // namespace

TrtLogger& TrtLogger::instance() {
  static TrtLogger* logger = new TrtLogger();  // deliberately never freed (see the header)
  return *logger;
}

TrtLogger::TrtLogger() {
  if (const char* level = std::getenv("NEOSERVE_TENSORRT_LOG")) {
    if (std::strcmp(level, "verbose") == 0) threshold_ = Severity::kVERBOSE;
    else if (std::strcmp(level, "info") == 0) threshold_ = Severity::kINFO;
    else if (std::strcmp(level, "error") == 0) threshold_ = Severity::kERROR;
  }
}

void TrtLogger::log(Severity severity, const char* msg) noexcept {
  if (!msg) return;
  const bool error = severity == Severity::kERROR || severity == Severity::kINTERNAL_ERROR;
  if (error) {
    try {
      last_error = msg;
    } catch (...) {  // a log call must not throw into TensorRT
    }
  }
  if (static_cast<int>(severity) > static_cast<int>(threshold_)) return;
  const char* kind = "";
  switch (severity) {
    case Severity::kINTERNAL_ERROR: kind = "internal error: "; break;
    case Severity::kERROR: kind = "error: "; break;
    case Severity::kWARNING: kind = "warning: "; break;
    case Severity::kINFO: kind = ""; break;
    case Severity::kVERBOSE: kind = "verbose: "; break;
  }
  std::fprintf(stderr, "neoserve tensorrt: %s%s\n", kind, msg);
}

std::string TrtLogger::take_last_error() {
  std::string e;
  e.swap(last_error);
  return e;
}

std::string TrtLogger::explain(const std::string& what) {
  const std::string e = take_last_error();
  return e.empty() ? what : what + ": " + e;
}

}  // namespace neoserve::trt
