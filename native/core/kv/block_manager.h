// Paged KV-cache bookkeeping: which fixed-size blocks each sequence holds.
// The provider owns the memory; this owns the block ids.
#pragma once
#include <cstdint>
#include <vector>

namespace neoserve {

class BlockManager {
 public:
  BlockManager(int32_t num_blocks, int32_t block_size);

  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return num_blocks_; }
  int32_t free_blocks() const { return static_cast<int32_t>(free_.size()); }
  int32_t used_blocks() const { return num_blocks_ - free_blocks(); }
  int32_t blocks_for(int64_t positions) const {
    return static_cast<int32_t>((positions + block_size_ - 1) / block_size_);
  }

  // Grows `table` so it covers `positions`; false (table unchanged) when not enough blocks are free.
  bool ensure(std::vector<int32_t>& table, int64_t positions);
  void release(std::vector<int32_t>& table);

 private:
  int32_t num_blocks_;
  int32_t block_size_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is reused first (warm in cache)
};

}  // namespace neoserve
