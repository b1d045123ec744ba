// The CPU engine's weight cache: a second load maps what the first converted
// and computes the same bits; every damaged, foreign or stale cache file is
// refused and replaced, never trusted; a cache that cannot be written leaves
// the load as it was.
#include <sys/stat.h>
#include <sys/time.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "harness.h"
#include "model_files.h"
#include "providers/cpu/cpu_provider.h"
#include "providers/cpu/crc32c.h"

using namespace neoserve;
using namespace neoserve::cpu;
using namespace neoserve::test;
namespace fs = std::filesystem;

namespace {

struct Run {
  std::string status;
  std::vector<float> logits;
};

// Loads the model at `path` with a cache in `cache` ("" = none) and returns the cache's status and a prompt's logits.
Run run(const std::string& path, const std::string& cache, const std::string& precision = "auto", const std::string& check = "full",
        LoadDepth depth = LoadDepth::Weights) {
  CpuProviderOptions opt;
  opt.threads = 2;
  opt.precision = precision;
  opt.weight_cache = cache;
  opt.weight_cache_check = check;
  CpuProvider p(std::shared_ptr<const ModelWeights>(load_model(path, depth)), opt);
  const std::vector<int32_t> tokens = {5, 17, 3, 99, 42, 7};
  const std::vector<int32_t> table = {0};
  SeqStep s{1, tokens, 0, table, true};
  LogitsOut out;
  p.step(std::span<const SeqStep>(&s, 1), out);
  return {p.info().weight_cache, out.data};
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<std::string> cache_files(const std::string& dir) {
  std::vector<std::string> out;
  if (fs::exists(dir))
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().string());
  return out;
}

// A GGUF Q8_0 and a Hugging Face F32 directory of the tiny Llama.
struct Files {
  TempDir dir;
  std::string gguf = dir.file("model.gguf"), hf = dir.file("hf"), cache = dir.file("cache");
  Files() {
    TinyLlama m;
    const auto hf_tensors = tiny_llama_tensors(m);
    write_file(gguf, tiny_llama_gguf(m, hf_tensors, GgufWeights::Q8_0).bytes());
    write_hf_dir(hf, m, hf_tensors);
  }
};

}  // namespace

TEST("weight_cache.a_second_load_maps_what_the_first_converted_with_the_same_bits") {
  Files f;
  for (const auto& [path, precision] : std::vector<std::pair<std::string, std::string>>{{f.gguf, "auto"}, {f.hf, "int8"}, {f.hf, "f32"}}) {
    const Run plain = run(path, "", precision);
    CHECK_EQ(plain.status, std::string("off"));
    const Run first = run(path, f.cache, precision);
    CHECK_EQ(first.status, std::string("written"));
    const Run second = run(path, f.cache, precision);
    CHECK_EQ(second.status, std::string("hit"));
    CHECK(same_bits(plain.logits, first.logits));
    CHECK(same_bits(plain.logits, second.logits));
  }
  // One file per model and settings: the GGUF, and the directory at two precisions.
  CHECK_EQ(cache_files(f.cache).size(), size_t(3));
}

TEST("weight_cache.a_damaged_or_foreign_file_is_refused_and_replaced") {
  Files f;
  const Run plain = run(f.gguf, "");
  CHECK_EQ(run(f.gguf, f.cache).status, std::string("written"));
  const std::string file = cache_files(f.cache).at(0);
  const Bytes good = read_file(file);
  CHECK(good.size() > 8192);
  auto with = [&](size_t at, uint8_t x) {
    Bytes b = good;
    b[at] ^= x;
    return b;
  };
  struct Case {
    const char* what;
    Bytes bytes;
    const char* why;
  };
  Bytes random(good.size());
  for (size_t i = 0; i < random.size(); ++i) random[i] = static_cast<uint8_t>(i * 2654435761u >> 13);
  uint64_t key_length;
  std::memcpy(&key_length, good.data() + 16, 8);
  Bytes huge_count = good;
  huge_count[12] = 0xff, huge_count[13] = 0xff, huge_count[14] = 0xff, huge_count[15] = 0x7f;
  const std::vector<Case> cases = {
      {"one bit of the first matrix", with(4096 + 3, 0x01), "checksum of"},
      {"one bit of the second matrix", with(16384 + 7, 0x10), "checksum of"},
      {"one bit of the key", with(40, 0x01), "made for another file or settings"},
      {"one bit of a matrix's name", with(24 + key_length + 8, 0x01), "header checksum does not match"},
      {"another magic", with(0, 0x20), "not a weight cache file"},
      {"another version", with(8, 0x01), "another layout version"},
      {"cut in half", Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(good.size() / 2)), "past the end"},
      {"cut inside the header", Bytes(good.begin(), good.begin() + 30), "cut short"},
      {"empty", Bytes{}, "cut short"},
      {"noise", random, "not a weight cache file"},
      {"an entry count past the header", huge_count, ""},
  };
  for (const Case& c : cases) {
    write_file(file, c.bytes);
    const Run r = run(f.gguf, f.cache);
    if (r.status.rfind("rewritten (", 0) != 0 || r.status.find(c.why) == std::string::npos)
      fail(__FILE__, __LINE__, std::string(c.what) + ": status " + r.status);
    CHECK(same_bits(plain.logits, r.logits));
    CHECK(read_file(file) == good);  // replaced by what this load converted: the same bytes
    CHECK_EQ(run(f.gguf, f.cache).status, std::string("hit"));
    // The default check reads no matrix bytes: it misses a changed matrix (the file is used as it is) and
    // refuses everything else alike.
    write_file(file, c.bytes);
    const Run h = run(f.gguf, f.cache, "auto", "header");
    const bool in_matrix = std::string(c.why) == "checksum of";
    if (in_matrix ? h.status != "hit" : h.status.find(c.why) == std::string::npos)
      fail(__FILE__, __LINE__, std::string(c.what) + " (header check): status " + h.status);
    if (!in_matrix) CHECK(same_bits(plain.logits, h.logits) && read_file(file) == good);
    write_file(file, good);
  }
}

TEST("weight_cache.a_changed_model_file_is_a_new_key_and_its_stale_file_goes") {
  Files f;
  CHECK_EQ(run(f.gguf, f.cache).status, std::string("written"));
  const auto before = cache_files(f.cache);
  CHECK_EQ(before.size(), size_t(1));
  // The same bytes with a new modification time: the key changes, the old file is stale.
  struct timeval times[2] = {{1000000000, 0}, {1000000000, 0}};
  CHECK_EQ(::utimes(f.gguf.c_str(), times), 0);
  CHECK_EQ(run(f.gguf, f.cache).status, std::string("written"));
  const auto after = cache_files(f.cache);
  CHECK_EQ(after.size(), size_t(1));
  CHECK(after.at(0) != before.at(0));
  CHECK_EQ(run(f.gguf, f.cache).status, std::string("hit"));
}

TEST("weight_cache.a_cache_that_cannot_be_written_leaves_the_load_as_it_was") {
  Files f;
  const Run plain = run(f.gguf, "");
  write_text(f.cache, "a file, not a directory");
  const Run r = run(f.gguf, f.cache + "/sub");
  CHECK(r.status.rfind("not written: ", 0) == 0);
  CHECK(same_bits(plain.logits, r.logits));
}

TEST("weight_cache.a_file_lacking_some_matrices_is_rewritten_whole") {
  Files f;
  TinyLlama tied;
  tied.tie = true;
  const auto tensors = tiny_llama_tensors(TinyLlama{});  // lm_head included, used only when the config unties it
  const std::string dir = f.dir.file("tying");
  write_hf_dir(dir, TinyLlama{}, tensors);
  write_text(dir + "/config.json", tiny_llama_config(tied));
  CHECK_EQ(run(dir, f.cache, "int8").status, std::string("written"));  // without lm_head
  write_text(dir + "/config.json", tiny_llama_config(TinyLlama{}));
  const Run plain = run(dir, "", "int8");
  const Run partial = run(dir, f.cache, "int8");
  CHECK_EQ(partial.status, std::string("rewritten (it lacked 1 matrices)"));
  CHECK(same_bits(plain.logits, partial.logits));
  const Run whole = run(dir, f.cache, "int8");  // the new file kept what the old one held, and lm_head
  CHECK_EQ(whole.status, std::string("hit"));
  CHECK(same_bits(plain.logits, whole.logits));
  write_text(dir + "/config.json", tiny_llama_config(tied));
  CHECK_EQ(run(dir, f.cache, "int8").status, std::string("hit"));
  CHECK_EQ(cache_files(f.cache).size(), size_t(1));  // no temporary file left
}

TEST("weight_cache.a_directory_others_may_write_to_is_not_used") {
  Files f;
  fs::create_directories(f.cache);
  fs::permissions(f.cache, fs::perms::others_write, fs::perm_options::add);
  const Run r = run(f.gguf, f.cache);
  CHECK_EQ(r.status, "off (" + f.cache + " is writable by others)");
  CHECK(cache_files(f.cache).empty());
}

TEST("weight_cache.random_damage_to_a_file_is_always_refused") {
  // A small fuzzer with a fixed seed: bytes of the header (where every length and offset lives) and of the
  // matrices changed, and the file cut anywhere. Each load must refuse the file and compute the same bits;
  // under the sanitizers (npm run test:asan) none may read out of bounds.
  Files f;
  const Run plain = run(f.gguf, "");
  CHECK_EQ(run(f.gguf, f.cache, "auto").status, std::string("written"));
  const std::string file = cache_files(f.cache).at(0);
  const Bytes good = read_file(file);
  uint64_t key_length;
  std::memcpy(&key_length, good.data() + 16, 8);
  const size_t header_end = std::min(good.size(), size_t(4096));
  uint64_t state = 0x9E3779B97F4A7C15ULL;
  auto next = [&](uint64_t n) {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return state % n;
  };
  int refused = 0;
  for (int i = 0; i < 150; ++i) {
    Bytes b = good;
    switch (i % 3) {
      case 0:  // 1-4 bytes of the header, past the key (lengths, formats, offsets, sizes)
        for (uint64_t k = 0, n = 1 + next(4); k < n; ++k) b[24 + key_length + next(header_end - 24 - key_length)] ^= static_cast<uint8_t>(1 + next(255));
        break;
      case 1:  // a byte anywhere
        b[next(b.size())] ^= static_cast<uint8_t>(1 + next(255));
        break;
      default:  // cut short
        b.resize(next(b.size()));
    }
    write_file(file, b);
    const Run r = run(f.gguf, f.cache);
    // A change in the padding after the header or between matrices (or a cut inside the last padding) is
    // harmless and the file is still used; anything else is refused. Either way the bits are the same.
    if (r.status.rfind("rewritten (", 0) == 0) ++refused;
    else if (r.status != "hit")
      fail(__FILE__, __LINE__, "case " + std::to_string(i) + ": status " + r.status);
    CHECK(same_bits(plain.logits, r.logits));
  }
  CHECK(refused >= 100);
}

TEST("weight_cache.crc32c_by_instruction_and_by_table_agree") {
  const char* check = "123456789";
  CHECK_EQ(crc32c_table(reinterpret_cast<const uint8_t*>(check), 9), 0xE3069283u);  // the standard check value
  std::vector<uint8_t> bytes(100003);
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (auto& b : bytes) x ^= x << 13, x ^= x >> 7, x ^= x << 17, b = static_cast<uint8_t>(x);
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{23}, size_t{24}, size_t{25}, size_t{4096}, size_t{99999}, bytes.size()}) {
    const Crc3 got = crc32c_thirds(bytes.data(), n);  // the SSE4.2 path on this machine, when it has one
    const size_t third = (n / 3) & ~size_t{7};
    CHECK_EQ(got.a, crc32c_table(bytes.data(), third));
    CHECK_EQ(got.b, crc32c_table(bytes.data() + third, third));
    CHECK_EQ(got.c, crc32c_table(bytes.data() + 2 * third, n - 2 * third));
  }
}

TEST("weight_cache.q_and_k_left_in_file_order_give_the_same_bits_converted_or_mapped") {
  // The engine loads GGUF files with LoadDepth::FileOrder: Q/K rows (and Qwen2's q/k biases) are un-permuted
  // only when converted, never for a cache hit. Each way, the logits are those of the loader's own copy.
  for (const GgufWeights type : {GgufWeights::F32, GgufWeights::F16, GgufWeights::Q8_0})
    for (const bool bias : {false, true})
      for (const char* precision : {"auto", "f32", "int8"}) {
        TempDir dir;
        TinyLlama m;
        m.qkv_bias = bias;
        const std::string gguf = dir.file("model.gguf"), cache = dir.file("cache");
        write_file(gguf, tiny_llama_gguf(m, tiny_llama_tensors(m), type).bytes());
        const Run reference = run(gguf, "", precision, "full", LoadDepth::Weights);
        const Run file_order = run(gguf, "", precision, "full", LoadDepth::FileOrder);
        const Run written = run(gguf, cache, precision, "full", LoadDepth::FileOrder);
        const Run mapped = run(gguf, cache, precision, "header", LoadDepth::FileOrder);
        const std::string what = std::string(precision) + (bias ? " with biases" : "") + " type " + std::to_string(static_cast<int>(type));
        if (!same_bits(reference.logits, file_order.logits)) fail(__FILE__, __LINE__, what + ": converted from file order");
        if (!same_bits(reference.logits, written.logits) || !same_bits(reference.logits, mapped.logits)) fail(__FILE__, __LINE__, what + ": cached");
        if (written.status != "off (nothing converted)") CHECK_EQ(mapped.status, std::string("hit"));
      }
}

TEST("weight_cache.a_file_written_from_either_load_depth_is_the_same_file_and_serves_the_other") {
  Files f;
  const std::string a = f.cache + "-weights", b = f.cache + "-file-order";
  CHECK_EQ(run(f.gguf, a, "auto", "full", LoadDepth::Weights).status, std::string("written"));
  CHECK_EQ(run(f.gguf, b, "auto", "full", LoadDepth::FileOrder).status, std::string("written"));
  CHECK(read_file(cache_files(a).at(0)) == read_file(cache_files(b).at(0)));
  CHECK_EQ(run(f.gguf, a, "auto", "full", LoadDepth::FileOrder).status, std::string("hit"));
  CHECK_EQ(run(f.gguf, b, "auto", "full", LoadDepth::Weights).status, std::string("hit"));
}
