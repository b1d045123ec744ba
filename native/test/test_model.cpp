// Config validation, RoPE frequencies, the mapped file and load_model's dispatch.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/model/model_weights.h"
#include "harness.h"
#include "model_files.h"

using namespace neoserve;
using namespace neoserve::test;

static LlamaConfig good_config() {
  LlamaConfig c;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.vocab_size = 128;
  return c;
}

TEST("model.dtype_names_and_row_bytes") {
  CHECK_EQ(std::string(dtype_name(DType::F32)), "F32");
  CHECK_EQ(std::string(dtype_name(DType::F16)), "F16");
  CHECK_EQ(std::string(dtype_name(DType::BF16)), "BF16");
  CHECK_EQ(std::string(dtype_name(DType::Q8_0)), "Q8_0");
  CHECK_EQ(dtype_row_bytes(DType::F32, 10), 40u);
  CHECK_EQ(dtype_row_bytes(DType::F16, 10), 20u);
  CHECK_EQ(dtype_row_bytes(DType::BF16, 10), 20u);
  CHECK_EQ(dtype_row_bytes(DType::Q8_0, 64), 68u);
  CHECK_THROWS(dtype_row_bytes(DType::Q8_0, 33), ErrorCode::Internal, "not whole blocks");
}

TEST("model.mapped_file") {
  TempDir dir;
  write_text(dir.file("a.bin"), "hello");
  MappedFile f(dir.file("a.bin"));
  CHECK_EQ(f.size(), 5u);
  CHECK(f.data() != nullptr && std::string(reinterpret_cast<const char*>(f.data()), 5) == "hello");
  CHECK_EQ(f.path(), dir.file("a.bin"));
  write_text(dir.file("empty.bin"), "");
  MappedFile e(dir.file("empty.bin"));
  CHECK_EQ(e.size(), 0u);
  CHECK_THROWS(MappedFile(dir.file("missing.bin")), ErrorCode::ModelLoadFailed, dir.file("missing.bin") + ": cannot open: No such file");
  CHECK_THROWS(MappedFile(dir.path()), ErrorCode::ModelLoadFailed, "not a regular file");
}

TEST("model.validate_accepts_a_sane_config") {
  good_config().validate("cfg");
  LlamaConfig c = good_config();
  c.rope_scaling.type = "llama3";
  c.rope_scaling.factor = 8;
  c.validate("cfg");
}

TEST("model.validate_names_what_is_wrong") {
  auto check = [](auto mutate, const char* needle) {
    LlamaConfig c = good_config();
    mutate(c);
    CHECK_THROWS(c.validate("x/config.json"), ErrorCode::ModelLoadFailed, std::string("x/config.json: invalid config: ") + needle);
  };
  check([](LlamaConfig& c) { c.hidden_size = 0; }, "hidden_size is 0");
  check([](LlamaConfig& c) { c.intermediate_size = -5; }, "intermediate_size is -5");
  check([](LlamaConfig& c) { c.num_hidden_layers = 0; }, "num_hidden_layers");
  check([](LlamaConfig& c) { c.num_attention_heads = 0; }, "num_attention_heads is 0");
  check([](LlamaConfig& c) { c.num_key_value_heads = 3; }, "num_attention_heads (4) is not a multiple of num_key_value_heads (3)");
  check([](LlamaConfig& c) { c.num_key_value_heads = 8; }, "num_attention_heads (4) is not a multiple of num_key_value_heads (8)");
  check([](LlamaConfig& c) { c.head_dim = 15; }, "head_dim (15) must be even");
  check([](LlamaConfig& c) { c.vocab_size = 0; }, "vocab_size is 0");
  check([](LlamaConfig& c) { c.rms_norm_eps = 0; }, "rms_norm_eps");
  check([](LlamaConfig& c) { c.rms_norm_eps = NAN; }, "rms_norm_eps");
  check([](LlamaConfig& c) { c.rope_theta = -1; }, "rope_theta");
  check([](LlamaConfig& c) { c.rope_scaling.type = "yarn"; }, "unsupported rope_scaling type \"yarn\"");
  check([](LlamaConfig& c) { c.rope_scaling.type = "llama3"; c.rope_scaling.high_freq_factor = 1; }, "rope_scaling.high_freq_factor");
  check([](LlamaConfig& c) { c.rope_freq_factors = {1, 2}; }, "rope_freqs has 2 factors, expected head_dim/2 = 8");
  check([](LlamaConfig& c) { c.eos_token_ids = {500}; }, "eos_token_id 500 outside the vocabulary");
}

TEST("model.rope_inv_freq_plain") {
  LlamaConfig c = good_config();
  c.rope_theta = 10000;
  const std::vector<float> f = rope_inv_freq(c);
  CHECK_EQ(f.size(), 8u);
  for (int i = 0; i < 8; ++i) CHECK_NEAR(f[i], std::pow(10000.0, -2.0 * i / 16), 1e-7 * std::pow(10000.0, -2.0 * i / 16));
}

// transformers' _compute_llama3_parameters, written the way the PyTorch code
// reads (whole-array where() selections), in double precision.
static std::vector<double> llama3_reference(double base, int dim, double factor, double low, double high, double old_ctx) {
  const int n = dim / 2;
  std::vector<double> inv(n), wavelen(n), llama(n), out(n);
  for (int i = 0; i < n; ++i) inv[i] = 1.0 / std::pow(base, static_cast<double>(2 * i) / dim);
  const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
  for (int i = 0; i < n; ++i) wavelen[i] = 2 * M_PI / inv[i];
  for (int i = 0; i < n; ++i) llama[i] = wavelen[i] > low_wavelen ? inv[i] / factor : inv[i];
  for (int i = 0; i < n; ++i) {
    const double smooth = (old_ctx / wavelen[i] - low) / (high - low);
    const double smoothed = (1 - smooth) * llama[i] / factor + smooth * llama[i];
    const bool medium = !(wavelen[i] < high_wavelen) && !(wavelen[i] > low_wavelen);
    out[i] = medium ? smoothed : llama[i];
  }
  return out;
}

TEST("model.rope_inv_freq_llama3_matches_transformers") {
  // Llama 3.1 8B: head_dim 128, theta 500000, factor 8, low 1, high 4, original 8192.
  LlamaConfig c = good_config();
  c.hidden_size = 4096;
  c.num_attention_heads = 32;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.rope_theta = 500000;
  c.rope_scaling = {"llama3", 8.0f, 1.0f, 4.0f, 8192};
  const std::vector<float> got = rope_inv_freq(c);
  const std::vector<double> want = llama3_reference(500000, 128, 8, 1, 4, 8192);
  CHECK_EQ(got.size(), want.size());
  int low = 0, medium = 0, high = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK_NEAR(got[i], want[i], 1e-6 * want[i]);
    const double wl = 2 * M_PI * std::pow(500000.0, 2.0 * i / 128);
    (wl > 8192 ? low : wl < 2048 ? high : medium)++;
  }
  CHECK(low > 0 && medium > 0 && high > 0);  // every branch of the formula exercised
  // Llama 3.2 1B/3B use factor 32.
  c.rope_scaling.factor = 32;
  const std::vector<float> got32 = rope_inv_freq(c);
  const std::vector<double> want32 = llama3_reference(500000, 128, 32, 1, 4, 8192);
  for (size_t i = 0; i < want32.size(); ++i) CHECK_NEAR(got32[i], want32[i], 1e-6 * want32[i]);
}

TEST("model.rope_inv_freq_gguf_factors_divide") {
  LlamaConfig c = good_config();
  c.rope_scaling = {"llama3", 8.0f, 1.0f, 4.0f, 8192};  // ignored: the factors already encode the scaling
  for (int i = 0; i < 8; ++i) c.rope_freq_factors.push_back(1.0f + i);
  const std::vector<float> f = rope_inv_freq(c);
  for (int i = 0; i < 8; ++i) {
    const double want = std::pow(10000.0, -2.0 * i / 16) / (1.0 + i);
    CHECK_NEAR(f[i], want, 1e-6 * want);
  }
}

TEST("model.load_model_dispatch_errors") {
  TempDir dir;
  CHECK_THROWS(load_model(dir.file("nope")), ErrorCode::ModelLoadFailed, dir.file("nope") + ": no such file or directory");
  write_text(dir.file("weights.bin"), "this is not a model");
  CHECK_THROWS(load_model(dir.file("weights.bin")), ErrorCode::ModelLoadFailed, dir.file("weights.bin") + ": not a model");
  write_text(dir.file("tiny.bin"), "GG");
  CHECK_THROWS(load_model(dir.file("tiny.bin")), ErrorCode::ModelLoadFailed, "not a model");
  write_file(dir.file("model.safetensors"), safetensors_bytes({f32_tensor("x", {2}, 1)}));
  CHECK_THROWS(load_model(dir.file("model.safetensors")), ErrorCode::ModelLoadFailed, "needs its config.json");
  // An empty directory is a Hugging Face directory without its config.
  CHECK_THROWS(load_model(dir.path() + "/"), ErrorCode::ModelLoadFailed, "config.json: cannot open");
}

TEST("model.unreadable_file_names_errno") {
  if (::geteuid() == 0) return;  // root reads anything; nothing to test
  TempDir dir;
  write_text(dir.file("secret.gguf"), "GGUF");
  ::chmod(dir.file("secret.gguf").c_str(), 0);
  CHECK_THROWS(load_model(dir.file("secret.gguf")), ErrorCode::ModelLoadFailed, "Permission denied");
}
