#include "weight_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "core/error.h"
#include "crc32c.h"
#include "thread_pool.h"

namespace neoserve::cpu {
namespace {

// File layout (host byte order; the key names the kernel set, so a file never moves between machines unnoticed):
//   "NSWCACHE", u32 version, u32 entries, u64 key length, key,
//   per entry: u64 name length, name, u32 format, i64 rows, i64 cols, u64 data offset, data bytes, scale offset, scale bytes, checksum,
//   u64 checksum of all the above; then the matrices' bytes, each at a 4096-byte boundary.
constexpr char kMagic[8] = {'N', 'S', 'W', 'C', 'A', 'C', 'H', 'E'};
constexpr uint64_t kAlign = 4096;
constexpr size_t kMaxName = 4096;
constexpr size_t kMaxKey = 1 << 20;

constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL, kPrime2 = 0xC2B2AE3D27D4EB4FULL, kPrime3 = 0x165667B19E3779F9ULL,
                   kPrime4 = 0x85EBCA77C2B2AE63ULL, kPrime5 = 0x27D4EB2F165667C5ULL;
inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t round64(uint64_t acc, uint64_t in) { return rotl(acc + in * kPrime2, 31) * kPrime1; }
inline uint64_t merge64(uint64_t acc, uint64_t v) { return (acc ^ round64(0, v)) * kPrime1 + kPrime4; }

// xxHash64 of one piece.
uint64_t xxh64(const uint8_t* p, size_t n, uint64_t seed) {
  const uint8_t* end = p + n;
  uint64_t h;
  auto load = [](const uint8_t* q) {
    uint64_t v;
    std::memcpy(&v, q, 8);
    return v;
  };
  if (n >= 32) {
    uint64_t v1 = seed + kPrime1 + kPrime2, v2 = seed + kPrime2, v3 = seed, v4 = seed - kPrime1;
    for (; p + 32 <= end; p += 32) {
      v1 = round64(v1, load(p));
      v2 = round64(v2, load(p + 8));
      v3 = round64(v3, load(p + 16));
      v4 = round64(v4, load(p + 24));
    }
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    h = merge64(merge64(merge64(merge64(h, v1), v2), v3), v4);
  } else {
    h = seed + kPrime5;
  }
  h += n;
  for (; p + 8 <= end; p += 8) h = rotl(h ^ round64(0, load(p)), 27) * kPrime1 + kPrime4;
  for (; p < end; ++p) h = rotl(h ^ (*p * kPrime5), 11) * kPrime1;
  h ^= h >> 33;
  h *= kPrime2;
  h ^= h >> 29;
  h *= kPrime3;
  return h ^ (h >> 32);
}

uint64_t fnv64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ULL;
  return h;
}

std::string hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

uint64_t align_up(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

std::string real_path(const std::string& path) {
  char* r = ::realpath(path.c_str(), nullptr);
  if (!r) return path;
  std::string out = r;
  std::free(r);
  return out;
}

// The identity of everything a cached conversion depends on.
std::string cache_key(const ModelWeights& model, const std::string& precision, const KernelSet& k) {
  std::string key = "neoserve weights v" + std::to_string(kWeightCacheVersion) + "\nprecision " + precision + "\nkernels " + k.isa + " " +
                    wformat_name(k.int8_layout) + " " + wformat_name(k.f32_layout) + " " + wformat_name(k.bf16_layout) + "\nformat " +
                    model_format_name(model.format) + "\n";
  // As each file was when mapped (a file replaced since is another key), its change time included: no tool sets it.
  for (const auto& f : model.files) key += "file " + real_path(f->path()) + " " + f->identity() + "\n";
  return key;
}

// Reads the header, every read bounded by the file.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  template <class T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  std::string text(size_t max) {
    const auto len = get<uint64_t>();
    if (len > max) throw std::runtime_error("a name or key too long");
    return {reinterpret_cast<const char*>(take(len)), static_cast<size_t>(len)};
  }
  size_t offset() const { return off_; }

 private:
  const uint8_t* take(size_t n) {
    if (n > n_ - off_) throw std::runtime_error("header cut short");
    const uint8_t* q = p_ + off_;
    off_ += n;
    return q;
  }
  const uint8_t* p_;
  size_t n_, off_ = 0;
};

class Writer {
 public:
  template <class T>
  void put(const T& v) {
    const auto* b = reinterpret_cast<const uint8_t*>(&v);
    bytes.insert(bytes.end(), b, b + sizeof(T));
  }
  void text(const std::string& s) {
    put<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  std::vector<uint8_t> bytes;
};

void write_all(int fd, const uint8_t* p, size_t n, uint64_t offset) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, std::min<size_t>(n, size_t{1} << 30), static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw std::runtime_error(std::string("cannot write: ") + std::strerror(errno));
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
}

// The cache is as trusted as the model: a directory others may write to could hold forged files.
void check_private(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return;  // made (by us) when written
  if (!S_ISDIR(st.st_mode)) throw std::runtime_error(dir + " is not a directory");
  if (st.st_uid != ::geteuid()) throw std::runtime_error(dir + " belongs to another user");
  if (st.st_mode & (S_IWGRP | S_IWOTH)) throw std::runtime_error(dir + " is writable by others");
}

// The key of a cache file, read without mapping it; "" when it is not a cache file of this layout.
std::string key_of(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) throw std::runtime_error("cannot open");
  std::vector<uint8_t> head(8 + 4 + 4 + 8);
  std::string key;
  const bool read_head = ::pread(fd, head.data(), head.size(), 0) == static_cast<ssize_t>(head.size());
  if (read_head && std::memcmp(head.data(), kMagic, 8) == 0) {
    uint64_t len;
    std::memcpy(&len, head.data() + 16, 8);
    if (len <= kMaxKey) {
      key.resize(len);
      if (::pread(fd, key.data(), len, static_cast<off_t>(head.size())) != static_cast<ssize_t>(len)) key.clear();
    }
  }
  ::close(fd);
  if (!read_head) throw std::runtime_error("cannot read");
  return key;
}

void make_dirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i < dir.size() && dir[i] != '/') continue;
    const std::string part = dir.substr(0, i);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) throw std::runtime_error("cannot create " + part + ": " + std::strerror(errno));
  }
}

}  // namespace

uint64_t weight_checksum(const uint8_t* p, size_t n, ThreadPool& pool) {
  constexpr size_t kPiece = size_t{8} << 20;
  const int64_t pieces = static_cast<int64_t>((n + kPiece - 1) / kPiece);
  std::vector<Crc3> crcs(static_cast<size_t>(pieces));
  pool.parallel_for(pieces, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const size_t off = static_cast<size_t>(i) * kPiece;
      crcs[static_cast<size_t>(i)] = crc32c_thirds(p + off, std::min(kPiece, n - off));
    }
  }, 1);
  return xxh64(reinterpret_cast<const uint8_t*>(crcs.data()), crcs.size() * sizeof(Crc3), n);
}

namespace {
// A matrix's values and its separate scales (if any), as one checksum.
uint64_t matrix_checksum(const uint8_t* data, size_t data_bytes, const uint8_t* scales, size_t scale_bytes, ThreadPool& pool) {
  return weight_checksum(data, data_bytes, pool) ^ rotl(weight_checksum(scales, scale_bytes, pool), 1);
}
}  // namespace

WeightCache::WeightCache(const std::string& dir, bool full_check, const ModelWeights& model, const std::string& precision,
                         const KernelSet& kernels, ThreadPool& pool)
    : dir_(dir), full_check_(full_check), pool_(pool) {
  if (dir_.empty()) return;
  if (model.files.empty()) {  // weights made in memory: nothing identifies them
    status_ = "off (the model has no files)";
    dir_.clear();
    return;
  }
  try {
    key_ = cache_key(model, precision, kernels);
  } catch (const std::exception& e) {
    status_ = std::string("not written: ") + e.what();
    dir_.clear();
    return;
  }
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  try {
    check_private(dir_);
  } catch (const std::exception& e) {
    status_ = std::string("off (") + e.what() + ")";
    dir_.clear();
    return;
  }
  path_ = dir_ + "/" + hex16(fnv64(real_path(model.source))) + "-" + hex16(fnv64(key_)) + ".nsw";
  status_ = "written";
  try {
    if (open()) return;
  } catch (const std::exception& e) {
    rejected_ = e.what();
  }
  file_.reset();
  entries_.clear();
}

WeightCache::~WeightCache() = default;

// True when the file exists, its key is this load's and its checksums verify (the matrices' only with full_check_).
bool WeightCache::open() {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return false;  // never written: a plain miss
  file_ = std::make_unique<MappedFile>(path_);
  Reader r(file_->data(), file_->size());
  char magic[8];
  for (char& ch : magic) ch = r.get<char>();
  if (std::memcmp(magic, kMagic, 8) != 0) throw std::runtime_error("not a weight cache file");
  if (r.get<uint32_t>() != kWeightCacheVersion) throw std::runtime_error("another layout version");
  const auto n = r.get<uint32_t>();
  if (r.text(kMaxKey) != key_) throw std::runtime_error("made for another file or settings");
  for (uint32_t i = 0; i < n; ++i) {
    std::string name = r.text(kMaxName);
    Entry e{};
    const auto format = r.get<uint32_t>();
    if (format > static_cast<uint32_t>(WFormat::Q4SP16)) throw std::runtime_error("an unknown matrix format");
    e.format = static_cast<WFormat>(format);
    e.rows = r.get<int64_t>();
    e.cols = r.get<int64_t>();
    e.data_off = r.get<uint64_t>();
    e.data_bytes = r.get<uint64_t>();
    e.scale_off = r.get<uint64_t>();
    e.scale_bytes = r.get<uint64_t>();
    e.checksum = r.get<uint64_t>();
    const auto inside = [&](uint64_t off, uint64_t bytes) { return off % kAlign == 0 && off <= file_->size() && bytes <= file_->size() - off; };
    if (!inside(e.data_off, e.data_bytes) || !inside(e.scale_off, e.scale_bytes)) throw std::runtime_error("a matrix past the end of the file");
    entries_.emplace(std::move(name), e);
  }
  const size_t header = r.offset();
  if (r.get<uint64_t>() != xxh64(file_->data(), header, 0)) throw std::runtime_error("header checksum does not match");
  file_->populate();  // the header holds: now every page's table entry, in one pass, for the checksums and the kernels
  if (full_check_)
    for (const auto& [name, e] : entries_) {
      const uint8_t* base = file_->data();
      if (matrix_checksum(base + e.data_off, e.data_bytes, base + e.scale_off, e.scale_bytes, pool_) != e.checksum) throw std::runtime_error("checksum of " + name + " does not match");
    }
  status_ = "hit";
  return true;
}

bool WeightCache::find(const std::string& name, int64_t rows, int64_t cols, const PreparedLayout& layout, WMat& out) {
  const auto it = entries_.find(name);
  if (it == entries_.end()) return false;
  const Entry& e = it->second;
  if (e.format != layout.format || e.rows != rows || e.cols != cols || e.data_bytes != layout.data_bytes || e.scale_bytes != layout.scale_bytes)
    return false;
  out = WMat{e.format, rows, cols, file_->data() + e.data_off,
             e.scale_bytes ? reinterpret_cast<const float*>(file_->data() + e.scale_off) : nullptr};
  found_.push_back({name, out, layout});
  return true;
}

void WeightCache::keep(const std::string& name, const WMat& w, const PreparedLayout& layout) {
  if (!dir_.empty()) kept_.push_back({name, w, layout});
}

std::unique_ptr<MappedFile> WeightCache::finish() {
  if (dir_.empty()) return nullptr;
  if (kept_.empty()) {
    if (found_.empty()) status_ = "off (nothing converted)";
    return found_.empty() ? nullptr : std::move(file_);
  }
  // Some matrices were converted: the file (if any) did not hold them all. A new one holds those found and
  // those converted (the found ones are read from the old mapping, which they keep pointing into).
  const std::string why = !rejected_.empty() ? rejected_ : file_ ? "it lacked " + std::to_string(kept_.size()) + " matrices" : "";
  try {
    write();
    status_ = why.empty() ? "written" : "rewritten (" + why + ")";
  } catch (const std::exception& e) {
    status_ = std::string("not written: ") + e.what();
  }
  kept_.clear();
  return found_.empty() ? nullptr : std::move(file_);
}

void WeightCache::write() {
  make_dirs(dir_);
  struct Placed {
    const Matrix* m;
    uint64_t data_off = 0, scale_off = 0, checksum = 0;
  };
  std::vector<Placed> placed;
  for (const auto* list : {&found_, &kept_})
    for (const Matrix& m : *list) placed.push_back({&m});
  const auto header = [&] {
    Writer h;
    for (char ch : kMagic) h.put(ch);
    h.put<uint32_t>(kWeightCacheVersion);
    h.put<uint32_t>(static_cast<uint32_t>(placed.size()));
    h.text(key_);
    for (const Placed& p : placed) {
      h.text(p.m->name);
      h.put<uint32_t>(static_cast<uint32_t>(p.m->layout.format));
      h.put<int64_t>(p.m->w.rows);
      h.put<int64_t>(p.m->w.cols);
      h.put<uint64_t>(p.data_off);
      h.put<uint64_t>(p.m->layout.data_bytes);
      h.put<uint64_t>(p.scale_off);
      h.put<uint64_t>(p.m->layout.scale_bytes);
      h.put<uint64_t>(p.checksum);
    }
    h.put<uint64_t>(xxh64(h.bytes.data(), h.bytes.size(), 0));
    return h;
  };
  // The header's size does not depend on the offsets it holds: place the matrices after it, then write it.
  uint64_t off = align_up(header().bytes.size());
  for (Placed& p : placed) {
    const Matrix& m = *p.m;
    p.data_off = off;
    off = align_up(off + m.layout.data_bytes);
    p.scale_off = m.layout.scale_bytes ? off : 0;
    off = align_up(off + m.layout.scale_bytes);
    p.checksum = matrix_checksum(m.w.data, m.layout.data_bytes, reinterpret_cast<const uint8_t*>(m.w.scales), m.layout.scale_bytes, pool_);
  }
  const Writer h = header();

  // A fresh name of our own (mkstemp: O_EXCL, never a planted link), renamed into place once whole.
  std::string tmp = path_ + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) throw std::runtime_error("cannot create " + tmp + ": " + std::strerror(errno));
  ::fchmod(fd, 0644);
  try {
    write_all(fd, h.bytes.data(), h.bytes.size(), 0);
    for (const Placed& p : placed) {
      write_all(fd, p.m->w.data, p.m->layout.data_bytes, p.data_off);
      if (p.m->layout.scale_bytes) write_all(fd, reinterpret_cast<const uint8_t*>(p.m->w.scales), p.m->layout.scale_bytes, p.scale_off);
    }
    if (::ftruncate(fd, static_cast<off_t>(off)) != 0) throw std::runtime_error(std::string("cannot size: ") + std::strerror(errno));
    // On the disk before its name is: loads check the header, not every byte (weightCacheCheck), so a crash
    // must never leave a whole-looking file whose matrices did not reach the disk.
    if (::fdatasync(fd) != 0) throw std::runtime_error(std::string("cannot sync: ") + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {  // where a full disk may show first
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(std::string("cannot write: ") + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot rename into " + path_ + ": " + std::strerror(err));
  }
  if (const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {  // the rename itself, durable
    ::fsync(dfd);
    ::close(dfd);
  }
  // This model's files made with the same settings for an earlier state of its files are stale; those of
  // other settings (another precision or kernel set) stay, for loads that use them.
  // A temporary file of this model's a day old was left by a writer that died.
  const std::string prefix = path_.substr(dir_.size() + 1, 17);  // "<source hash>-"
  const auto settings = [](const std::string& k) { return k.substr(0, k.find("\nfile ")); };
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (dirent* ent = ::readdir(d)) {
      const std::string name = ent->d_name, full = dir_ + "/" + name;
      if (name.rfind(prefix, 0) != 0 || full == path_) continue;
      if (name.find(".nsw.tmp.") != std::string::npos) {
        struct stat st {};
        if (::lstat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime < ::time(nullptr) - 86400) ::unlink(full.c_str());
        continue;
      }
      if (name.size() < 4 || name.substr(name.size() - 4) != ".nsw") continue;
      try {
        const std::string key = key_of(full);
        if (key.empty() || settings(key) == settings(key_)) ::unlink(full.c_str());  // not a cache file, or stale
      } catch (const std::exception&) {
        // could not read it (permissions, a passing error): leave it
      }
    }
    ::closedir(d);
  }
}

}  // namespace neoserve::cpu
