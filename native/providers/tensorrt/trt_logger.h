// TensorRT's log sink for the provider: warnings and errors go to stderr as
// "neoserve tensorrt: ...", and the last error is kept so that a call that
// failed (deserialize, setInputShape, enqueueV3) can say why in its Error.
#pragma once
#include <NvInferRuntime.h>

#include <string>

namespace neoserve::trt {

// One logger for the process, never destroyed: libnvinfer stays loaded for the
// life of the process and its process-wide state (the plugin registry) may keep
// the logger it was first given, so it must outlive every provider. The last
// error is kept per thread: each failing call reads the error of its own thread.
class TrtLogger final : public nvinfer1::ILogger {
 public:
  static TrtLogger& instance();

  void log(Severity severity, const char* msg) noexcept override;

  // The last error TensorRT reported on this thread since the previous call ("" if none); forgets it.
  std::string take_last_error();
  // Forgets an earlier error before a checked call, so a failure never reports a stale cause.
  void clear() { (void)take_last_error(); }
  // "<what>" followed by ": <TensorRT's last error>" when there is one.
  std::string explain(const std::string& what);

 private:
  // NEOSERVE_TENSORRT_LOG=info (or verbose) also prints TensorRT's info (verbose) messages.
  TrtLogger();
  Severity threshold_ = Severity::kWARNING;
};

}  // namespace neoserve::trt
