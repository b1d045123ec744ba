#include "tensorrt_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "core/error.h"
#include "tensorrt/entry.h"

namespace neoserve {

namespace {

[[noreturn]] void unavailable(const std::string& why) {
  throw Error(ErrorCode::ProviderUnavailable, "provider unavailable: " + why);
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown dlopen error";
}

// Both libraries stay open for the life of the process: TensorRT does not
// support being unloaded while CUDA state it created is alive.
struct Libraries {
  std::mutex mutex;
  void* nvinfer = nullptr;
  std::string nvinfer_path;
  void* provider = nullptr;
  std::string provider_path;
};
Libraries& libraries() {
  static Libraries libs;
  return libs;
}

void* open_nvinfer(Libraries& libs) {
  const std::string path = env_or("NEOSERVE_NVINFER_LIBRARY", "libnvinfer.so.10");
  if (libs.nvinfer && libs.nvinfer_path == path) return libs.nvinfer;
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    unavailable("TensorRT 10 is not installed or not on the library path: cannot load " + path + " (" + dl_error() +
                "); install TensorRT 10 and add its lib/ to LD_LIBRARY_PATH, or set NEOSERVE_NVINFER_LIBRARY");
  libs.nvinfer = handle;
  libs.nvinfer_path = path;
  return handle;
}

TensorRtVersion nvinfer_version(void* nvinfer, const std::string& path) {
  using VersionFn = int32_t (*)();
  auto version = reinterpret_cast<VersionFn>(dlsym(nvinfer, "getInferLibVersion"));
  if (!version) unavailable(path + " does not export getInferLibVersion: not a TensorRT library");
  const int32_t encoded = version();
  const TensorRtVersion v = TensorRtVersion::from_lib(encoded);
  if (v.major != 10) unavailable(path + " is TensorRT " + v.text() + "; this provider runs TensorRT 10");
  return v;
}

struct ProviderEntry {
  neoserve_tensorrt_create_fn create = nullptr;
};

ProviderEntry open_provider(Libraries& libs) {
  const std::string path = tensorrt_provider_path();
  if (!libs.provider || libs.provider_path != path) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle)
      unavailable("this build has no TensorRT provider: cannot load " + path + " (" + dl_error() +
                  "); build it with `bash scripts/build-tensorrt.sh` (needs TensorRT 10 headers and CUDA)");
    libs.provider = handle;
    libs.provider_path = path;
  }
  auto abi = reinterpret_cast<neoserve_tensorrt_abi_fn>(dlsym(libs.provider, "neoserve_tensorrt_abi"));
  auto create = reinterpret_cast<neoserve_tensorrt_create_fn>(dlsym(libs.provider, "neoserve_tensorrt_create"));
  if (!abi || !create) unavailable(path + " does not export the neoserve TensorRT entry points");
  const int version = abi(tensorrt_layout_fingerprint());
  if (version != NEOSERVE_TENSORRT_ABI)
    unavailable(path + " was built for another version of neoserve (" +
                (version < 0 ? std::string("its types are laid out differently")
                             : "ABI " + std::to_string(version) + ", expected " + std::to_string(NEOSERVE_TENSORRT_ABI)) +
                "): rebuild it with scripts/build-tensorrt.sh");
  return {create};
}

}  // namespace

std::string tensorrt_provider_path() {
  if (const char* v = std::getenv("NEOSERVE_TENSORRT_PROVIDER"); v && *v) return v;
  Dl_info info{};
  std::string dir = ".";
  if (dladdr(reinterpret_cast<void*>(&tensorrt_provider_path), &info) && info.dli_fname) {
    const std::string self = info.dli_fname;
    const size_t slash = self.rfind('/');
    if (slash != std::string::npos) dir = self.substr(0, slash);
  }
  return dir + "/neoserve_tensorrt.so";
}

std::shared_ptr<Provider> create_tensorrt_provider(const EngineManifest& manifest, const ProviderOptions& options) {
  Libraries& libs = libraries();
  std::lock_guard<std::mutex> lock(libs.mutex);
  void* nvinfer = open_nvinfer(libs);
  check_runtime_version(manifest, nvinfer_version(nvinfer, libs.nvinfer_path));
  const ProviderEntry entry = open_provider(libs);

  TensorRtLoadRequest request;
  request.manifest = &manifest;
  request.nvinfer = nvinfer;
  request.device = options.device.c_str();
  request.kv_block_size = options.kv_block_size;
  request.kv_memory_bytes = options.kv_memory_bytes;
  Provider* provider = nullptr;
  char message[2048] = {0};
  const int code = entry.create(&request, &provider, message, sizeof message);
  if (code != 0 || !provider) {
    throw Error(code > 0 ? error_code_from_int(code - 1) : ErrorCode::Internal, message[0] ? message : "the TensorRT provider failed without a message");
  }
  return std::shared_ptr<Provider>(provider);
}

}  // namespace neoserve
