// "[4096, 128]": how shapes appear in load errors.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace neoserve {

inline std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace neoserve
