// A read-only memory mapping of a whole file; weights are never copied out of it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace neoserve {

// The whole pages inside [p, p + n) of any mapping dropped from the resident
// set (madvise DONTNEED): a file's pages fault back in from the file, anonymous
// memory's come back as zeros.
void release_memory(const uint8_t* p, size_t n);

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws ModelLoadFailed naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops the whole pages inside [p, p + n) from the resident set (release_memory).
  void release(const uint8_t* p, size_t n) const { release_memory(p, n); }
  // Maps every page now, in one pass in the kernel, rather than fault them in one by one when read (best effort).
  void populate() const;
  // The file as it was when mapped: size, modification and change times, inode and device.
  const std::string& identity() const { return identity_; }

 private:
  std::string path_, identity_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace neoserve
