#include "engine_manifest.h"

#include <cstdio>
#include <filesystem>

#include "../error.h"
#include "../json/json.h"
#include "hf_config.h"
#include "mapped_file.h"

namespace neoserve {

namespace {

namespace fs = std::filesystem;

constexpr const char* kFormat = "neoserve-tensorrt";
constexpr int64_t kFormatVersion = 1;

std::string_view text_of(const MappedFile& f) { return {reinterpret_cast<const char*>(f.data()), f.size()}; }

const std::string& string_field(const json::Value& obj, const char* key) {
  const json::Value* v = obj.find(key);
  if (!v) throw json::Error(std::string("missing \"") + key + "\"");
  if (!v->is_string()) throw json::Error(std::string("\"") + key + "\" must be a string");
  return v->as_string();
}

// A file name inside the directory: relative, no "..", no separators' tricks.
fs::path inside(const fs::path& dir, const std::string& name, const char* key) {
  const fs::path p(name);
  if (name.empty() || p.is_absolute()) throw json::Error(std::string("\"") + key + "\" must be a file name inside the directory");
  for (const auto& part : p)
    if (part == "..") throw json::Error(std::string("\"") + key + "\" must not leave the directory (\"" + name + "\")");
  return dir / p;
}

TensorRtVersion parse_version(const std::string& text) {
  TensorRtVersion v;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%d.%d.%d%n", &v.major, &v.minor, &v.patch, &consumed) != 3 ||
      consumed != static_cast<int>(text.size()) || v.major < 0 || v.minor < 0 || v.patch < 0)
    throw json::Error("\"tensorrtVersion\" must be major.minor.patch, e.g. \"10.8.0\" (got \"" + text + "\")");
  if (v.major != 10)
    throw json::Error("engine built with TensorRT " + text + "; this provider runs TensorRT 10 engines (libnvinfer.so.10)");
  return v;
}

void read_io(const json::Value& io, EngineIoNames& names) {
  if (!io.is_object()) throw json::Error("\"io\" must be an object");
  struct Field {
    const char* key;
    std::string* name;
    bool per_layer;
  } fields[] = {
      {"inputIds", &names.input_ids, false},      {"attentionMask", &names.attention_mask, false},
      {"positionIds", &names.position_ids, false}, {"pastKey", &names.past_key, true},
      {"pastValue", &names.past_value, true},      {"logits", &names.logits, false},
      {"presentKey", &names.present_key, true},    {"presentValue", &names.present_value, true},
  };
  for (const auto& [key, value] : io.as_object()) {
    const Field* f = nullptr;
    for (const Field& candidate : fields)
      if (key == candidate.key) f = &candidate;
    if (!f) throw json::Error("\"io\" has an unknown key \"" + key + "\"");
    if (!value.is_string() || value.as_string().empty()) throw json::Error("io." + key + " must be a non-empty string");
    *f->name = value.as_string();
  }
  for (const Field& f : fields) {
    const bool has_layer = f.name->find("{i}") != std::string::npos;
    if (f.per_layer && !has_layer) throw json::Error(std::string("io.") + f.key + " must contain \"{i}\" for the layer index");
    if (!f.per_layer && has_layer) throw json::Error(std::string("io.") + f.key + " is one tensor: no \"{i}\"");
  }
}

}  // namespace

std::string EngineIoNames::layer(const std::string& pattern, int32_t layer) {
  std::string out = pattern;
  const size_t at = out.find("{i}");
  if (at != std::string::npos) out.replace(at, 3, std::to_string(layer));
  return out;
}

std::string TensorRtVersion::text() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

TensorRtVersion TensorRtVersion::from_lib(int32_t encoded) {
  return {encoded / 10000, (encoded / 100) % 100, encoded % 100};
}

bool is_engine_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::is_regular_file(fs::path(path) / "neoserve.json", ec);
}

EngineManifest load_engine_manifest(const std::string& dir) {
  EngineManifest m;
  m.dir = dir;
  m.path = (fs::path(dir) / "neoserve.json").string();
  std::string config_path;
  {
    MappedFile file(m.path);
    try {
      const json::Value root = json::parse(text_of(file));
      if (!root.is_object()) throw json::Error("not a JSON object");
      if (string_field(root, "format") != kFormat)
        throw json::Error("\"format\" must be \"" + std::string(kFormat) + "\" (got \"" + string_field(root, "format") + "\")");
      const json::Value* version = root.find("formatVersion");
      if (!version || !version->is_int() || version->as_int() != kFormatVersion)
        throw json::Error("\"formatVersion\" must be " + std::to_string(kFormatVersion));
      m.engine_file = inside(dir, string_field(root, "engine"), "engine").string();
      m.precision = string_field(root, "precision");
      if (m.precision != "fp16" && m.precision != "int8")
        throw json::Error("\"precision\" must be \"fp16\" or \"int8\" (got \"" + m.precision + "\")");
      m.built_with = parse_version(string_field(root, "tensorrtVersion"));
      if (const json::Value* vc = root.find("versionCompatible")) {
        if (!vc->is_bool()) throw json::Error("\"versionCompatible\" must be true or false");
        m.version_compatible = vc->as_bool();
      }
      const json::Value* config = root.find("config");
      config_path = inside(dir, config ? string_field(root, "config") : std::string("config.json"), "config").string();
      if (const json::Value* io = root.find("io")) read_io(*io, m.io);
    } catch (const json::Error& e) {
      throw_load_error(m.path, e.what());
    }
  }
  std::error_code ec;
  if (!fs::is_regular_file(m.engine_file, ec))
    throw_load_error(m.path, "engine file " + m.engine_file + " does not exist or is not a file");
  if (fs::file_size(m.engine_file, ec) == 0 || ec) throw_load_error(m.engine_file, "engine file is empty");
  {
    MappedFile config_file(config_path);
    m.config = parse_hf_config(text_of(config_file), config_path);
  }
  add_generation_config_eos(fs::path(config_path).parent_path().string(), m.config);
  if (m.config.vocab_size <= 0) throw_load_error(config_path, "vocab_size is required for a TensorRT engine");
  m.config.validate(config_path);
  return m;
}

void check_runtime_version(const EngineManifest& m, const TensorRtVersion& runtime) {
  const TensorRtVersion& b = m.built_with;
  const bool same = runtime.major == b.major && runtime.minor == b.minor && runtime.patch == b.patch;
  // A version-compatible engine carries its own lean runtime: any later 10.x deserializes it.
  const bool later = runtime.major == b.major && (runtime.minor > b.minor || (runtime.minor == b.minor && runtime.patch >= b.patch));
  if (same || (m.version_compatible && later)) return;
  std::string fix = m.version_compatible ? "run it with TensorRT " + b.text() + " or later 10.x"
                                         : "rebuild the engine with this TensorRT, or build it with trtexec "
                                           "--versionCompatible to run it on later 10.x versions";
  throw Error(ErrorCode::ProviderUnavailable, "provider unavailable: " + m.engine_file + " was built with TensorRT " +
                                                  b.text() + " but libnvinfer.so.10 is " + runtime.text() + ": " + fix);
}

}  // namespace neoserve
