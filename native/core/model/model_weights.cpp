#include "model_weights.h"

#include <cstring>

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

void unpermute_rows_into(const Tensor& t, int n_head, int head_dim, uint8_t* dst) {
  const size_t rows = static_cast<size_t>(n_head) * head_dim;
  const size_t row_bytes = t.nbytes / rows;
  const size_t half = static_cast<size_t>(head_dim) / 2;
  for (size_t h = 0; h < static_cast<size_t>(n_head); ++h)
    for (size_t i = 0; i < 2; ++i)
      for (size_t j = 0; j < half; ++j) {
        const size_t hf_row = h * head_dim + i * half + j;
        const size_t gguf_row = h * head_dim + 2 * j + i;
        std::memcpy(dst + hf_row * row_bytes, t.data + gguf_row * row_bytes, row_bytes);
      }
}

}  // namespace neoserve
