#include "model_weights.h"

#include "../error.h"

namespace neoserve {

const Tensor* ModelWeights::find(const std::string& name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

const Tensor& ModelWeights::get(const std::string& name) const {
  const Tensor* t = find(name);
  if (!t) throw_load_error(source, "missing tensor " + name);
  return *t;
}

void ModelWeights::release_pages(const Tensor& t) const {
  for (const auto& f : files)
    if (t.data >= f->data() && t.data + t.nbytes <= f->data() + f->size()) f->release(t.data, t.nbytes);
}

std::string layer_tensor_name(int layer, const char* suffix) {
  return "model.layers." + std::to_string(layer) + "." + suffix;
}

}  // namespace neoserve
