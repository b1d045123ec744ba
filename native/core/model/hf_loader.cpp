// Hugging Face directory → ModelWeights. Tensors keep their HF names and point
// into the mapped safetensors files.
#include <filesystem>
#include <set>
#include <string_view>

#include "../error.h"
#include "../json/json.h"
#include "hf_config.h"
#include "model_loader.h"
#include "safetensors.h"

namespace neoserve {

namespace {

namespace fs = std::filesystem;

std::string_view text_of(const MappedFile& f) {
  return std::string_view(reinterpret_cast<const char*>(f.data()), f.size());
}

void add_safetensors_file(const std::string& path, ModelWeights& w, TensorFiles& files) {
  auto file = std::make_unique<MappedFile>(path);
  std::vector<Tensor> tensors = parse_safetensors(file->data(), file->size(), path);
  for (Tensor& t : tensors) {
    auto [it, fresh] = files.emplace(t.name, path);
    if (!fresh) throw_load_error(path, "tensor " + t.name + " is also in " + it->second);
    std::string name = t.name;
    w.tensors.emplace(std::move(name), std::move(t));
  }
  w.files.push_back(std::move(file));
}

// A shard name from the index must stay inside the model directory.
bool plain_file_name(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos && s.find('\0') == std::string::npos;
}

void load_sharded(const fs::path& dir, const std::string& index_path, ModelWeights& w, TensorFiles& files) {
  MappedFile index_file(index_path);
  std::map<std::string, std::string> weight_map;  // tensor → shard file name
  try {
    const json::Value index = json::parse(text_of(index_file));
    for (const auto& [tensor, shard] : index.at("weight_map").as_object()) {
      const std::string& file = shard.as_string();
      if (!plain_file_name(file)) throw json::Error("weight_map names shard \"" + file + "\" outside the model directory");
      weight_map.emplace(tensor, file);
    }
  } catch (const json::Error& e) {
    throw_load_error(index_path, e.what());
  }
  if (weight_map.empty()) throw_load_error(index_path, "weight_map is empty");

  std::set<std::string> shards;
  for (const auto& [tensor, file] : weight_map) shards.insert(file);
  for (const std::string& shard : shards) add_safetensors_file((dir / shard).string(), w, files);

  for (const auto& [tensor, file] : weight_map) {
    const std::string shard_path = (dir / file).string();
    auto it = files.find(tensor);
    if (it == files.end())
      throw_load_error(index_path, "tensor " + tensor + " is listed in " + file + " but that shard does not contain it");
    if (it->second != shard_path)
      throw_load_error(index_path, "tensor " + tensor + " is listed in " + file + " but found in " + it->second);
  }
}

}  // namespace

void load_hf_directory(const std::string& dir, ModelWeights& w, TensorFiles& files) {
  w.format = ModelFormat::HuggingFace;
  const fs::path root(dir);
  const std::string config_path = (root / "config.json").string();
  {
    MappedFile config_file(config_path);
    w.config = parse_hf_config(text_of(config_file), config_path);
  }
  add_generation_config_eos(dir, w.config);

  const std::string single = (root / "model.safetensors").string();
  const std::string index = (root / "model.safetensors.index.json").string();
  std::error_code ec;
  if (fs::exists(single, ec)) {
    add_safetensors_file(single, w, files);
  } else if (fs::exists(index, ec)) {
    load_sharded(root, index, w, files);
  } else {
    throw_load_error(dir, "no model.safetensors or model.safetensors.index.json in the directory");
  }
}

}  // namespace neoserve
