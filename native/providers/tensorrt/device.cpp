#include "device.h"

#include <dlfcn.h>

#include <cctype>
#include <cstdlib>
#include <vector>

#include "cuda_check.h"

namespace neoserve::trt {

namespace {

bool iequals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// CUDA_VISIBLE_DEVICES as a list of entries; empty when unset.
std::vector<std::string> visible_devices(std::string& raw) {
  std::vector<std::string> out;
  const char* v = std::getenv("CUDA_VISIBLE_DEVICES");
  raw = v ? v : "";
  if (!v) return out;
  size_t start = 0;
  while (start <= raw.size()) {
    const size_t comma = raw.find(',', start);
    const size_t end = comma == std::string::npos ? raw.size() : comma;
    const std::string entry = trim(raw.substr(start, end - start));
    if (!entry.empty()) out.push_back(entry);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

cudaDeviceProp properties(int ordinal) {
  cudaDeviceProp prop{};
  cuda_check(cudaGetDeviceProperties(&prop, ordinal),
             ("cannot read the properties of CUDA device " + std::to_string(ordinal)).c_str(),
             ErrorCode::ProviderUnavailable);
  return prop;
}

std::string cuda_version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

// Why the runtime found no driver it can use: none installed, or one older than the runtime this library links.
std::string driver_hint(cudaError_t e) {
  if (e != cudaErrorInsufficientDriver) return "";
  int runtime = 0, driver = 0;
  (void)cudaRuntimeGetVersion(&runtime);
  (void)cudaDriverGetVersion(&driver);
  (void)cudaGetLastError();
  void* libcuda = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (!libcuda) {
    const char* why = dlerror();
    return std::string("; no NVIDIA driver: libcuda.so.1 cannot be loaded (") + (why ? why : "not found") + ")";
  }
  dlclose(libcuda);
  return "; this provider was built with CUDA " + cuda_version_text(runtime) + ", the driver supports CUDA " +
         (driver > 0 ? cuda_version_text(driver) : std::string("none")) + ": update the NVIDIA driver";
}

bool all_digits(const std::string& s) {
  if (s.empty() || s.size() > 6) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

std::string format_uuid(const cudaUUID_t& uuid) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    const auto byte = static_cast<unsigned char>(uuid.bytes[i]);
    s += hex[byte >> 4];
    s += hex[byte & 15];
  }
  return s;
}

CudaDevice select_cuda_device(const std::string& spec) {
  const bool is_mig = starts_with(spec, "MIG-");
  if (!spec.empty() && !all_digits(spec) && !starts_with(spec, "GPU-") && !is_mig)
    throw_invalid("device must be \"\" (the first GPU), a CUDA device index, \"GPU-<uuid>\" or \"MIG-<uuid>\"; got \"" +
                  spec + "\"");

  std::string cvd_raw;
  const std::vector<std::string> cvd = visible_devices(cvd_raw);
  const std::string cvd_text = std::getenv("CUDA_VISIBLE_DEVICES") ? "CUDA_VISIBLE_DEVICES=\"" + cvd_raw + "\""
                                                                    : "CUDA_VISIBLE_DEVICES is not set";
  if (is_mig && (cvd.empty() || !iequals(cvd.front(), spec))) {
    std::string why = "device \"" + spec +
                      "\" is a MIG instance, and a process can only use the MIG instance it was started with: set "
                      "CUDA_VISIBLE_DEVICES=" + spec + " before the process starts (" + cvd_text + ")";
    for (size_t i = 1; i < cvd.size(); ++i)
      if (iequals(cvd[i], spec)) why += "; CUDA exposes only the first MIG instance listed there";
    unavailable(why);
  }

  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    unavailable("no CUDA device: " + cuda_error_text(e) + driver_hint(e) + " (" + cvd_text + ")");
  }
  if (count <= 0) unavailable("no CUDA device: the driver reports none (" + cvd_text + ")");

  CudaDevice d;
  if (spec.empty() || all_digits(spec) || is_mig) {
    d.ordinal = is_mig ? 0 : spec.empty() ? 0 : std::atoi(spec.c_str());
    if (d.ordinal >= count)
      unavailable("CUDA device " + spec + " does not exist: this process sees " + std::to_string(count) +
                  " device(s), 0 to " + std::to_string(count - 1) + " (" + cvd_text + ")");
  } else {  // GPU-<uuid>
    std::string seen;
    d.ordinal = -1;
    for (int i = 0; i < count && d.ordinal < 0; ++i) {
      const std::string uuid = "GPU-" + format_uuid(properties(i).uuid);
      if (iequals(uuid, spec)) d.ordinal = i;
      seen += (seen.empty() ? "" : ", ") + uuid;
    }
    if (d.ordinal < 0)
      unavailable("no visible CUDA device has UUID " + spec + " (visible: " + seen + "; " + cvd_text + ")");
  }

  const cudaDeviceProp prop = properties(d.ordinal);
  d.name = prop.name;
  d.total_memory = prop.totalGlobalMem;
  d.cc_major = prop.major;
  d.cc_minor = prop.minor;
  // Under CUDA_VISIBLE_DEVICES=MIG-<uuid>, device 0 is that instance: name it the way the user did.
  if (is_mig) d.label = spec;
  else if (d.ordinal == 0 && !cvd.empty() && starts_with(cvd.front(), "MIG-")) d.label = cvd.front();
  else d.label = "GPU-" + format_uuid(prop.uuid);
  d.label += " (" + d.name + ")";
  return d;
}

}  // namespace neoserve::trt
