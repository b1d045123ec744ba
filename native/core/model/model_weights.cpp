#include "model_weights.h"

#include "../error.h"
#include "mapped_file.h"

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

void ModelWeights::release(const uint8_t* p, size_t n) const {
  for (const auto& f : files)
    if (p >= f->data() && p + n <= f->data() + f->size()) return f->release(p, n);
  for (const OwnedBuffer& b : owned_buffers)
    if (b.releasable && p >= b.bytes.get() && p + n <= b.bytes.get() + b.size) return release_memory(p, n);
}

std::string layer_tensor_name(int layer, const char* suffix) {
  return "model.layers." + std::to_string(layer) + "." + suffix;
}

}  // namespace neoserve
