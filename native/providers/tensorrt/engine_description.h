// What a deserialized ICudaEngine declares about its I/O, in the plain form
// that core/model/engine_io.h checks against the manifest (so every mismatch
// is tested there without TensorRT).
#pragma once
#include <NvInferRuntime.h>

#include <string>

#include "core/model/engine_io.h"

namespace neoserve::trt {

EngineDType engine_dtype(nvinfer1::DataType t);
size_t engine_dtype_size(EngineDType t);  // bytes per element; 0 for Bool/Other

// Every I/O tensor: name, direction, dtype, shape, and for inputs the range
// of optimization profile 0 (kMIN / kOPT / kMAX).
EngineDescription describe_engine(const nvinfer1::ICudaEngine& engine);

// The provider hands TensorRT dense row-major device buffers: throws
// ModelLoadFailed ("<engine file>: <tensor>: ...") for an I/O tensor that
// lives on the host or has a vectorized format.
void check_io_layout(const nvinfer1::ICudaEngine& engine, const std::string& engine_file);

}  // namespace neoserve::trt
