// The weights the CPU engine converted at load (panels, int8 requantized,
// fp32 widened), kept in one file per model and settings in a cache
// directory, and mapped on the next load instead of converted again: a
// mapping of page-cache pages costs no conversion and no zero-filled
// anonymous memory, which is most of a cold start on a VM.
//
// A file is used only when its key matches exactly: the layout version below,
// the precision, the kernel set and its layouts, and every model file's path,
// size, modification time and inode. Each matrix it holds must have the
// format, shape and size this load would produce, inside the file, and the
// header its checksum; with a full check (weightCacheCheck "full") every
// matrix's checksum is verified too, which reads every byte once more. A file
// that fails a check is ignored and replaced, never trusted. The checksums
// find accidents, not forgeries: the directory must be
// as trusted as the model, so one that another user owns or others may write
// to is not used. Writing is best effort (a read-only or full disk leaves the
// load as it was) and atomic (a temporary file renamed into place), and a new
// file removes the stale ones of the same model.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/model/mapped_file.h"
#include "core/model/model_weights.h"
#include "kernels/matmul.h"

namespace neoserve::cpu {

class ThreadPool;

// Bump whenever a conversion's output bytes change (a packer, a quantizer, a layout).
inline constexpr uint32_t kWeightCacheVersion = 2;

// What one converted matrix is: its format and the bytes of its values and of its separate fp32 scales (I8 rows only).
struct PreparedLayout {
  WFormat format = WFormat::F32;
  size_t data_bytes = 0;
  size_t scale_bytes = 0;
};

class WeightCache {
 public:
  // `dir` empty: off. Otherwise opens this model's file in `dir` when one
  // exists and checks its layout, key, bounds and header checksum; with
  // `full_check`, also every matrix's checksum (reading every byte, on `pool`).
  WeightCache(const std::string& dir, bool full_check, const ModelWeights& model, const std::string& precision, const KernelSet& kernels,
              ThreadPool& pool);
  ~WeightCache();

  // The matrix `name` from the file, when it holds it exactly as `layout` says; else false.
  bool find(const std::string& name, int64_t rows, int64_t cols, const PreparedLayout& layout, WMat& out);
  // A matrix converted because the file lacked it: written with the others by finish().
  void keep(const std::string& name, const WMat& w, const PreparedLayout& layout);
  // After every matrix: writes a new file if any was converted. Returns the
  // mapping the found matrices point into (null when none), and status() says what happened.
  std::unique_ptr<MappedFile> finish();

  // "off", "hit", "written", "rewritten (<why the old file was not used>)", or "not written: <why>".
  const std::string& status() const { return status_; }
  // The file this model and these settings use ("" when off).
  const std::string& path() const { return path_; }

 private:
  struct Entry {
    WFormat format;
    int64_t rows, cols;
    uint64_t data_off, data_bytes, scale_off, scale_bytes, checksum;
  };
  struct Matrix {
    std::string name;
    WMat w;
    PreparedLayout layout;
  };
  bool open();
  void write();

  std::string dir_, path_, key_, status_ = "off", rejected_;
  bool full_check_;
  ThreadPool& pool_;
  std::unique_ptr<MappedFile> file_;
  std::map<std::string, Entry> entries_;
  std::vector<Matrix> kept_, found_;  // converted here; found in the file
};

// A checksum of n bytes, on `pool`: CRC-32C of each third of every 8 MiB piece
// (crc32c.h: at memory speed where the CPU has SSE4.2), those joined by
// xxHash64. Not cryptographic: it finds a burst of up to 32 changed bits in a
// piece always, other damage but with chance 2^-32 per piece.
uint64_t weight_checksum(const uint8_t* p, size_t n, ThreadPool& pool);

}  // namespace neoserve::cpu
