// Opens what a TensorRT engine needs at run time, in the order a user fixes
// them: libnvinfer.so.10, its version against the engine's, then this build's
// provider library (neoserve_tensorrt.so, beside the addon). Nothing here needs
// TensorRT headers or CUDA: the addon builds and loads without either.
#pragma once
#include <memory>
#include <string>

#include "core/model/engine_manifest.h"
#include "core/options.h"
#include "core/provider.h"

namespace neoserve {

// Where the provider library is looked for: $NEOSERVE_TENSORRT_PROVIDER, else
// neoserve_tensorrt.so in the directory of the binary this code is linked into.
std::string tensorrt_provider_path();

// Throws ProviderUnavailable naming what is missing (library, version, device),
// ModelLoadFailed for an engine that does not match its manifest, OutOfMemory
// when the engine's buffers or KV cache do not fit the device.
std::shared_ptr<Provider> create_tensorrt_provider(const EngineManifest& manifest, const ProviderOptions& options);

}  // namespace neoserve
