// TensorRT's log sink for the provider: warnings and errors go to stderr as
// "neoserve tensorrt: ...", and the last error is kept so that a call that
// failed (deserialize, setInputShape, enqueueV3) can say why in its Error.
#pragma once
#include <NvInferRuntime.h>

#include <mutex>
#include <string>

namespace neoserve::trt {

class TrtLogger final : public nvinfer1::ILogger {
 public:
  // NEOSERVE_TENSORRT_LOG=info (or verbose) also prints TensorRT's info (verbose) messages.
  TrtLogger();
  void log(Severity severity, const char* msg) noexcept override;

  // The last error TensorRT reported since the previous call ("" if none); forgets it.
  std::string take_last_error();
  // "<what>" followed by ": <TensorRT's last error>" when there is one.
  std::string explain(const std::string& what);

 private:
  Severity threshold_ = Severity::kWARNING;
  std::mutex mutex_;
  std::string last_error_;
};

}  // namespace neoserve::trt
