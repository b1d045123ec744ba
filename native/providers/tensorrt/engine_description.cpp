#include "engine_description.h"

#include <vector>

#include "core/error.h"

namespace neoserve::trt {

namespace {

std::vector<int64_t> dims_of(const nvinfer1::Dims& d) {
  if (d.nbDims < 0 || d.nbDims > nvinfer1::Dims::MAX_DIMS) return {};
  return std::vector<int64_t>(d.d, d.d + d.nbDims);
}

}  // namespace

EngineDType engine_dtype(nvinfer1::DataType t) {
  switch (t) {
    case nvinfer1::DataType::kFLOAT: return EngineDType::Float32;
    case nvinfer1::DataType::kHALF: return EngineDType::Float16;
    case nvinfer1::DataType::kBF16: return EngineDType::BFloat16;
    case nvinfer1::DataType::kINT8: return EngineDType::Int8;
    case nvinfer1::DataType::kINT32: return EngineDType::Int32;
    case nvinfer1::DataType::kINT64: return EngineDType::Int64;
    case nvinfer1::DataType::kBOOL: return EngineDType::Bool;
    default: return EngineDType::Other;
  }
}

size_t engine_dtype_size(EngineDType t) {
  switch (t) {
    case EngineDType::Float32: return 4;
    case EngineDType::Float16: return 2;
    case EngineDType::BFloat16: return 2;
    case EngineDType::Int8: return 1;
    case EngineDType::Int32: return 4;
    case EngineDType::Int64: return 8;
    case EngineDType::Bool: return 0;
    case EngineDType::Other: return 0;
  }
  return 0;
}

EngineDescription describe_engine(const nvinfer1::ICudaEngine& engine) {
  EngineDescription d;
  d.num_profiles = engine.getNbOptimizationProfiles();
  const int32_t n = engine.getNbIOTensors();
  d.tensors.reserve(n > 0 ? static_cast<size_t>(n) : 0);
  for (int32_t i = 0; i < n; ++i) {
    const char* name = engine.getIOTensorName(i);
    if (!name) continue;
    EngineTensor t;
    t.name = name;
    t.is_input = engine.getTensorIOMode(name) == nvinfer1::TensorIOMode::kINPUT;
    t.dtype = engine_dtype(engine.getTensorDataType(name));
    t.shape = dims_of(engine.getTensorShape(name));
    if (t.is_input && d.num_profiles > 0) {
      t.min = dims_of(engine.getProfileShape(name, 0, nvinfer1::OptProfileSelector::kMIN));
      t.opt = dims_of(engine.getProfileShape(name, 0, nvinfer1::OptProfileSelector::kOPT));
      t.max = dims_of(engine.getProfileShape(name, 0, nvinfer1::OptProfileSelector::kMAX));
    }
    d.tensors.push_back(std::move(t));
  }
  return d;
}

void check_io_layout(const nvinfer1::ICudaEngine& engine, const std::string& engine_file) {
  const int32_t n = engine.getNbIOTensors();
  for (int32_t i = 0; i < n; ++i) {
    const char* name = engine.getIOTensorName(i);
    if (!name) continue;
    if (engine.getTensorLocation(name) != nvinfer1::TensorLocation::kDEVICE)
      throw_load_error(engine_file, std::string(name) +
                                        ": the engine expects this tensor in host memory; the provider feeds device "
                                        "tensors (rebuild the engine without host shape tensors)");
    if (engine.getTensorFormat(name) != nvinfer1::TensorFormat::kLINEAR) {
      const char* desc = engine.getTensorFormatDesc(name);
      throw_load_error(engine_file, std::string(name) + ": I/O format is not linear (" + (desc ? desc : "unknown") +
                                        "); rebuild the engine with linear I/O formats (the default)");
    }
  }
}

}  // namespace neoserve::trt
