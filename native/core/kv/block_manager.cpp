#include "block_manager.h"

namespace neoserve {

BlockManager::BlockManager(int32_t num_blocks, int32_t block_size)
    : num_blocks_(num_blocks), block_size_(block_size) {
  free_.reserve(num_blocks);
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

bool BlockManager::ensure(std::vector<int32_t>& table, int64_t positions) {
  const int32_t need = blocks_for(positions) - static_cast<int32_t>(table.size());
  if (need <= 0) return true;
  if (need > free_blocks()) return false;
  for (int32_t i = 0; i < need; ++i) {
    table.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void BlockManager::release(std::vector<int32_t>& table) {
  for (auto it = table.rbegin(); it != table.rend(); ++it) free_.push_back(*it);
  table.clear();
}

}  // namespace neoserve
