#include "cpu_weights.h"

#include <atomic>
#include <cctype>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/model/ggml_blocks.h"
#include "thread_pool.h"

namespace neoserve::cpu {
namespace {

std::string lowercase(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// The tensor as stored, rows x cols of its mapped bytes.
WMat mapped(const Tensor& t, int64_t rows, int64_t cols) {
  WMat w{WFormat::Ggml, rows, cols, t.data, nullptr};
  switch (t.dtype) {
    case DType::F32: w.format = WFormat::F32; break;
    case DType::F16: w.format = WFormat::F16; break;
    case DType::BF16: w.format = WFormat::BF16; break;
    case DType::Q8_0: w.format = WFormat::Q8_0; break;
    default: w.dtype = t.dtype;  // ggml's other block types (ggml_blocks.h)
  }
  return w;
}

enum class Conversion { None, ToF32, ToInt8, ToBf16Panels, ToQ4Panels };

// A 4-bit GGUF type (Q4_0, Q4_1, Q4_K): its values as to_u4 gives them, else nullptr.
const GgmlBlockType* four_bit(const WMat& w) {
  const GgmlBlockType* b = w.format == WFormat::Ggml ? ggml_block_type(w.dtype) : nullptr;
  return b && b->to_u4 ? b : nullptr;
}
// Q4_0 runs without mins (its m is 8d: an integer offset); Q4_1 and Q4_K with them.
bool q4_mins(const WMat& w) { return w.dtype != DType::Q4_0; }

// What the requested precision makes of a matrix stored as `w` for kernels `k`
// (GGUF Q8_0 always runs as our int8, the same values, and so do the other
// ggml block types, requantized where their values are not d * int8; fp32 is
// repacked when the kernels run it in panels).
Conversion conversion_for(const WMat& w, const std::string& precision, const KernelSet& k) {
  if (precision == "f32" && w.format != WFormat::F32) return Conversion::ToF32;
  if (precision == "auto" && four_bit(w) && k.int8_layout == WFormat::I8P16) return Conversion::ToQ4Panels;
  if ((precision == "int8" && !w.integer()) || w.format == WFormat::Q8_0 || w.format == WFormat::Ggml) return Conversion::ToInt8;
  if (w.format == WFormat::F32 && k.f32_layout == WFormat::F32P16) return Conversion::ToF32;
  if (w.format == WFormat::BF16 && k.bf16_layout == WFormat::BF16P16) return Conversion::ToBf16Panels;
  return Conversion::None;
}

size_t padded_rows(int64_t rows, WFormat layout) {
  return static_cast<size_t>(layout == WFormat::I8P16 || layout == WFormat::F32P16 || layout == WFormat::BF16P16
                                 ? panels_of(rows) * kPanelRows
                                 : rows);
}

// What a conversion makes of a matrix: its format and bytes (None: its mapped pages, in its own format).
PreparedLayout prepared_layout(const WMat& w, Conversion c, const KernelSet& k) {
  const size_t rows = padded_rows(w.rows, k.int8_layout), nb = static_cast<size_t>(w.kpad() / kQuantBlock);
  switch (c) {
    case Conversion::ToF32: return {k.f32_layout, padded_rows(w.rows, k.f32_layout) * static_cast<size_t>(w.cols) * 4, 0};
    case Conversion::ToBf16Panels: return {WFormat::BF16P16, padded_rows(w.rows, WFormat::BF16P16) * static_cast<size_t>(even(w.cols)) * 2, 0};
    case Conversion::ToInt8:  // values, and a scale per block: fp16 inside panels, fp32 beside rows
      if (k.int8_layout == WFormat::I8P16) return {WFormat::I8P16, rows * static_cast<size_t>(w.kpad()) + rows * nb * 2, 0};
      return {WFormat::I8, rows * static_cast<size_t>(w.kpad()), rows * nb * 4};
    case Conversion::ToQ4Panels:
      return {q4_mins(w) ? WFormat::Q4P16 : WFormat::Q4SP16, rows * nb * static_cast<size_t>(q4_panel_block_bytes(q4_mins(w))) / kPanelRows, 0};
    case Conversion::None: return {w.format, w.row_bytes() * static_cast<size_t>(w.rows), 0};
  }
  return {};
}

class Preparer {
 public:
  Preparer(const ModelWeights& m, const std::string& precision, const KernelSet& kernels, ThreadPool& pool, WeightCache& cache, CpuWeights& out)
      : m_(m), precision_(precision), kernels_(kernels), pool_(pool), cache_(cache), out_(out) {}

  // A 2-D weight of the expected shape, converted to the requested precision.
  WMat matrix(const std::string& name, int64_t rows, int64_t cols) {
    const Tensor& t = m_.get(name);
    if (t.shape.size() != 2 || t.shape[0] != rows || t.shape[1] != cols)
      throw_load_error(m_.source, "tensor " + name + " has shape " + shape_str(t) + ", expected [" +
                                      std::to_string(rows) + ", " + std::to_string(cols) + "]");
    if (cols % dtype_block_elems(t.dtype) != 0) throw_load_error(m_.source, name + ": " + dtype_name(t.dtype) + " row not whole blocks");
    const WMat w = mapped(t, rows, cols);
    if (t.nbytes < w.row_bytes() * rows) throw_load_error(m_.source, name + ": data shorter than its shape");
    const Conversion c = conversion_for(w, precision_, kernels_);
    const PreparedLayout layout = prepared_layout(w, c, kernels_);
    WMat converted;
    if (c != Conversion::None && cache_.find(name, rows, cols, layout, converted)) {
      m_.release_pages(t);  // the loader's own copy (GGUF Q/K un-permuted), if any: the cached one serves
      return converted;
    }
    WeightBytes unpermuted;  // rows the file interleaves are read only here: read in place, or converted on a miss
    const WMat from = in_hf_order(name, t, w, unpermuted);
    switch (c) {
      case Conversion::None:  // computed in place from the mapping, or from the un-permuted copy, which the weights keep
        if (unpermuted) out_.owned.push_back(std::move(unpermuted));
        return from;
      case Conversion::ToF32: converted = to_f32(from, name); break;
      case Conversion::ToInt8: converted = to_int8(from, name); break;
      case Conversion::ToBf16Panels: converted = to_bf16_panels(from); break;
      case Conversion::ToQ4Panels: converted = to_q4_panels(from, name); break;
    }
    m_.release_pages(t);  // the copy serves from now on (in_chunks released most of it already)
    cache_.keep(name, converted, layout);
    return converted;
  }

  std::vector<float> vector(const std::string& name, int64_t n) {
    const Tensor& t = m_.get(name);
    if (t.numel() != n || t.shape.size() != 1) throw_load_error(m_.source, "tensor " + name + " has shape " + shape_str(t) + ", expected [" + std::to_string(n) + "]");
    if (n % dtype_block_elems(t.dtype) != 0) throw_load_error(m_.source, name + ": " + dtype_name(t.dtype) + " vector not whole blocks");
    WeightBytes unpermuted;
    const WMat w = in_hf_order(name, t, mapped(t, 1, n), unpermuted);
    std::vector<float> v(n);
    dequantize_row(w, 0, v.data());
    return v;
  }

 private:
  // `w` (the mapping of `t`), or, when the loader left `t`'s rows as the file interleaves them
  // (LoadDepth::FileOrder), the same rows in Hugging Face's order, in `copy`.
  WMat in_hf_order(const std::string& name, const Tensor& t, WMat w, WeightBytes& copy) {
    const auto it = m_.interleaved_rows.find(name);
    if (it == m_.interleaved_rows.end()) return w;
    copy = allocate_weights(t.nbytes);
    unpermute_rows_into(t, it->second.first, it->second.second, copy.get());
    m_.release_pages(t);  // read once, into the copy
    w.data = copy.get();
    return w;
  }

  static std::string shape_str(const Tensor& t) {
    std::string s = "[";
    for (size_t i = 0; i < t.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
    return s + "]";
  }

  // A corrupt file's scale: int8 has no NaN, and an inf would poison every dot product.
  void require_finite(bool finite, const std::string& name) const {
    if (!finite) throw_load_error(m_.source, "tensor " + name + " holds values or scales that are not finite (inf or NaN)");
  }

  // body(i0, i1) over items [0, n) of `rows_per_item` rows of w each, spread
  // over the pool in chunks of about 8 MB of w; after each chunk its rows'
  // file pages are released, so converting holds the copies made so far and
  // one chunk of the file, never a whole tensor beside its copy.
  template <class Body>
  void in_chunks(const WMat& w, int64_t n, int64_t rows_per_item, Body&& body) {
    const size_t item_bytes = std::max<size_t>(1, w.row_bytes() * static_cast<size_t>(rows_per_item));
    const int64_t chunk = std::max<int64_t>(1, static_cast<int64_t>((size_t{8} << 20) / item_bytes));
    for (int64_t c0 = 0; c0 < n; c0 += chunk) {
      const int64_t c1 = std::min(n, c0 + chunk);
      pool_.parallel_for(c1 - c0, [&](int64_t b, int64_t e) { body(c0 + b, c0 + e); });
      const int64_t r0 = c0 * rows_per_item, r1 = std::min(w.rows, c1 * rows_per_item);
      m_.release(w.data + r0 * w.row_bytes(), static_cast<size_t>(r1 - r0) * w.row_bytes());
    }
  }

  // fp32 in the kernels' layout: rows, or 16-row panels packed one at a time.
  WMat to_f32(const WMat& w, const std::string& name) {
    std::atomic<bool> finite{true};  // GGUF's block types: a corrupt scale is refused here too
    const bool panels = kernels_.f32_layout == WFormat::F32P16;
    const bool blocks = w.format == WFormat::Q8_0 || w.format == WFormat::Ggml;
    const int64_t rows = static_cast<int64_t>(padded_rows(w.rows, kernels_.f32_layout));
    auto buf = allocate_weights(static_cast<size_t>(rows * w.cols) * 4);
    float* dst = reinterpret_cast<float*>(buf.get());
    if (!panels) {
      in_chunks(w, w.rows, 1, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          dequantize_row(w, r, dst + r * w.cols);
          if (blocks && !all_finite(dst + r * w.cols, w.cols)) finite = false;
        }
      });
    } else {
      in_chunks(w, panels_of(w.rows), kPanelRows, [&](int64_t b, int64_t e) {
        std::vector<float> rows16(static_cast<size_t>(kPanelRows * w.cols));
        for (int64_t p = b; p < e; ++p) {
          const int64_t n = std::min(kPanelRows, w.rows - p * kPanelRows);
          for (int64_t i = 0; i < n; ++i) dequantize_row(w, p * kPanelRows + i, rows16.data() + i * w.cols);
          if (blocks && !all_finite(rows16.data(), n * w.cols)) finite = false;
          pack_f32_panel(rows16.data(), n, w.cols, dst + p * kPanelRows * w.cols);
        }
      });
    }
    require_finite(finite, name);
    WMat out{panels ? WFormat::F32P16 : WFormat::F32, w.rows, w.cols, buf.get(), nullptr};
    out_.owned.push_back(std::move(buf));
    return out;
  }

  WMat to_bf16_panels(const WMat& w) {
    const int64_t ke = even(w.cols), panels = panels_of(w.rows);
    auto buf = allocate_weights(static_cast<size_t>(panels * kPanelRows * ke) * 2);
    uint16_t* dst = reinterpret_cast<uint16_t*>(buf.get());
    in_chunks(w, panels, kPanelRows, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p)
        pack_bf16_panel(w.data + p * kPanelRows * w.row_bytes(), w.row_bytes(), std::min(kPanelRows, w.rows - p * kPanelRows), w.cols,
                        dst + p * kPanelRows * ke);
    });
    WMat out{WFormat::BF16P16, w.rows, w.cols, buf.get(), nullptr};
    out_.owned.push_back(std::move(buf));
    return out;
  }

  // Row r of w as int8 blocks in the I8 row layout (kpad values, kpad/32
  // scales): GGUF types whose blocks are d * int8 (Q8_0, Q4_0, Q5_0) keep
  // their values and scales (fp16 -> fp32 is exact; Q8_0's 34-byte blocks
  // straddle cache lines and would cost ~2x in decode), other formats are
  // quantized from their fp32 values. `row` is scratch of w.cols floats.
  // 4-bit values in 4-bit panels, their scales (and mins) rounded to fp16:
  // exact for Q4_0 and Q4_1, whose scales are fp16; Q4_K's d * 6-bit scale
  // (up to 17 bits) moves by at most 2^-12 of itself. A scale past fp16's range
  // (no real file has one) is refused.
  WMat to_q4_panels(const WMat& w, const std::string& name) {
    const GgmlBlockType& type = *four_bit(w);
    const bool mins = q4_mins(w);
    const int64_t kpad = w.kpad(), nb = kpad / kQuantBlock, bb = q4_panel_block_bytes(mins);
    auto panels = allocate_weights(static_cast<size_t>(panels_of(w.rows) * nb * bb));
    std::atomic<bool> finite{true}, fits{true};
    in_chunks(w, panels_of(w.rows), kPanelRows, [&](int64_t b, int64_t e) {
      std::vector<uint8_t> q16(static_cast<size_t>(kPanelRows * kpad));
      std::vector<float> d16(static_cast<size_t>(kPanelRows * nb)), m16(d16.size());
      for (int64_t p = b; p < e; ++p) {
        const int64_t n = std::min(kPanelRows, w.rows - p * kPanelRows);
        for (int64_t lane = 0; lane < n; ++lane)
          type.to_u4(w.data + (p * kPanelRows + lane) * w.row_bytes(), nb, q16.data() + lane * kpad, d16.data() + lane * nb,
                     m16.data() + lane * nb);
        if (!all_finite(d16.data(), n * nb) || (mins && !all_finite(m16.data(), n * nb))) finite = false;
        for (int64_t i = 0; i < n * nb; ++i)
          if (std::fabs(d16[i]) > 65504.0f || (mins && std::fabs(m16[i]) > 65504.0f)) fits = false;
        pack_q4_panel(q16.data(), d16.data(), m16.data(), n, kpad, mins, panels.get() + p * nb * bb);
      }
    });
    require_finite(finite, name);
    if (!fits) throw_load_error(m_.source, "tensor " + name + " has a 4-bit scale past fp16's range (65504)");
    WMat out{mins ? WFormat::Q4P16 : WFormat::Q4SP16, w.rows, w.cols, panels.get(), nullptr};
    out_.owned.push_back(std::move(panels));
    return out;
  }

  // false when the row holds a value or scale that is not finite (a corrupt
  // file: int8 has no NaN, and an inf scale would poison every dot product).
  static bool int8_row(const WMat& w, int64_t r, std::vector<float>& row, int8_t* q, float* d) {
    const GgmlBlockType* exact = w.format == WFormat::Q8_0 ? ggml_block_type(DType::Q8_0)
                                 : w.format == WFormat::Ggml ? ggml_block_type(w.dtype)
                                                              : nullptr;
    if (exact && exact->to_int8) {
      exact->to_int8(w.data + r * w.row_bytes(), w.cols / kQuantBlock, q, d);
      return all_finite(d, w.cols / kQuantBlock);
    }
    dequantize_row(w, r, row.data());
    if (!all_finite(row.data(), w.cols)) return false;
    quantize_rows_i8(row.data(), 1, w.cols, q, d);
    return true;
  }

  static bool all_finite(const float* v, int64_t n) {
    float acc = 0.0f;  // v * 0 is NaN exactly when v is inf or NaN
    for (int64_t i = 0; i < n; ++i) acc += v[i] * 0.0f;
    return acc == 0.0f;
  }

  // Int8 in the kernels' layout (int8_layout_): rows, or 16-row panels packed
  // one at a time from a panel's worth of rows (no I8 copy of the whole matrix).
  WMat to_int8(const WMat& w, const std::string& name) {
    std::atomic<bool> finite{true};
    const auto check = [&] {
      require_finite(finite, name);
    };
    const int64_t kpad = w.kpad(), nb = kpad / kQuantBlock;
    if (kernels_.int8_layout != WFormat::I8P16) {
      auto q = allocate_weights(static_cast<size_t>(w.rows * kpad));
      auto d = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(w.rows * nb));
      int8_t* qs = reinterpret_cast<int8_t*>(q.get());
      in_chunks(w, w.rows, 1, [&](int64_t b, int64_t e) {
        std::vector<float> row(w.cols);
        for (int64_t r = b; r < e; ++r)
          if (!int8_row(w, r, row, qs + r * kpad, d.get() + r * nb)) finite = false;
      });
      check();
      WMat out{WFormat::I8, w.rows, w.cols, q.get(), d.get()};
      out_.owned.push_back(std::move(q));
      out_.owned_scales.push_back(std::move(d));
      return out;
    }
    auto panels = allocate_weights(static_cast<size_t>(panels_of(w.rows) * nb * kPanelBlockBytes));
    if (w.format == WFormat::Q8_0) {  // the file's bytes, reordered
      in_chunks(w, panels_of(w.rows), kPanelRows, [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p)
          if (!pack_q8_0_panel(w.data + p * kPanelRows * w.row_bytes(), w.row_bytes(), std::min(kPanelRows, w.rows - p * kPanelRows), nb,
                               panels.get() + p * nb * kPanelBlockBytes))
            finite = false;
      });
      check();
      WMat out{WFormat::I8P16, w.rows, w.cols, panels.get(), nullptr};
      out_.owned.push_back(std::move(panels));
      return out;
    }
    in_chunks(w, panels_of(w.rows), kPanelRows, [&](int64_t b, int64_t e) {
      std::vector<float> row(w.cols);
      std::vector<int8_t> q16(static_cast<size_t>(kPanelRows * kpad));
      std::vector<float> d16(static_cast<size_t>(kPanelRows * nb));
      for (int64_t p = b; p < e; ++p) {
        std::fill(q16.begin(), q16.end(), 0);
        std::fill(d16.begin(), d16.end(), 0.0f);
        for (int64_t lane = 0; lane < kPanelRows && p * kPanelRows + lane < w.rows; ++lane)
          if (!int8_row(w, p * kPanelRows + lane, row, q16.data() + lane * kpad, d16.data() + lane * nb)) finite = false;
        const WMat panel{WFormat::I8, kPanelRows, w.cols, reinterpret_cast<const uint8_t*>(q16.data()), d16.data()};
        pack_panels(panel, 0, 1, panels.get() + p * nb * kPanelBlockBytes);
      }
    });
    check();
    WMat out{WFormat::I8P16, w.rows, w.cols, panels.get(), nullptr};
    out_.owned.push_back(std::move(panels));
    return out;
  }

  const ModelWeights& m_;
  const std::string& precision_;
  const KernelSet& kernels_;
  ThreadPool& pool_;
  WeightCache& cache_;
  CpuWeights& out_;
};

}  // namespace

size_t planned_weight_bytes(const ModelWeights& model, const std::string& precision, const KernelSet& kernels) {
  size_t total = 0;
  for (const auto& [name, t] : model.tensors) {
    if (t.shape.size() != 2) {
      total += static_cast<size_t>(t.numel()) * 4;  // norms and biases: fp32 copies
      continue;
    }
    const WMat w = mapped(t, t.shape[0], t.shape[1]);
    const PreparedLayout layout = prepared_layout(w, conversion_for(w, precision, kernels), kernels);
    total += layout.data_bytes + layout.scale_bytes;
  }
  return total;
}

// `precision` was checked with the other load options (core/options.h).
std::unique_ptr<CpuWeights> prepare_weights(const ModelWeights& model, const std::string& precision, const KernelSet& kernels,
                                            ThreadPool& pool, const std::string& cache_dir, bool full_cache_check) {
  const LlamaConfig& c = model.config;
  const int64_t H = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const int64_t qdim = static_cast<int64_t>(c.num_attention_heads) * c.head_dim;
  const int64_t kvdim = static_cast<int64_t>(c.num_key_value_heads) * c.head_dim;

  auto w = std::make_unique<CpuWeights>();
  WeightCache cache(cache_dir, full_cache_check, model, precision, kernels, pool);
  Preparer p(model, precision, kernels, pool, cache, *w);
  w->embed = p.matrix("model.embed_tokens.weight", V, H);
  const Tensor* head = model.find("lm_head.weight");
  w->lm_head = (head && !c.tie_word_embeddings) ? p.matrix("lm_head.weight", V, H) : w->embed;
  w->final_norm = p.vector("model.norm.weight", H);
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    LayerWeights L;
    auto name = [l](const char* s) { return layer_tensor_name(l, s); };
    L.attn_norm = p.vector(name("input_layernorm.weight"), H);
    L.mlp_norm = p.vector(name("post_attention_layernorm.weight"), H);
    L.q = p.matrix(name("self_attn.q_proj.weight"), qdim, H);
    L.k = p.matrix(name("self_attn.k_proj.weight"), kvdim, H);
    L.v = p.matrix(name("self_attn.v_proj.weight"), kvdim, H);
    L.o = p.matrix(name("self_attn.o_proj.weight"), H, qdim);
    L.gate = p.matrix(name("mlp.gate_proj.weight"), F, H);
    L.up = p.matrix(name("mlp.up_proj.weight"), F, H);
    L.down = p.matrix(name("mlp.down_proj.weight"), H, F);
    if (c.qk_norm) {
      L.q_norm = p.vector(name("self_attn.q_norm.weight"), c.head_dim);
      L.k_norm = p.vector(name("self_attn.k_norm.weight"), c.head_dim);
    }
    if (model.find(name("self_attn.q_proj.bias"))) {
      L.q_bias = p.vector(name("self_attn.q_proj.bias"), qdim);
      L.k_bias = p.vector(name("self_attn.k_proj.bias"), kvdim);
      L.v_bias = p.vector(name("self_attn.v_proj.bias"), kvdim);
    }
    w->layers.push_back(std::move(L));
  }
  w->cache_file = cache.finish();
  w->cache_status = cache.status();
  // Report what the weights are, not their in-memory layout: Q8_0 stays
  // "q8_0", a Q4_K_M file "q4_k" (its attention's q, the type most of it has).
  const Tensor& probe = model.get(c.num_hidden_layers > 0 ? layer_tensor_name(0, "self_attn.q_proj.weight") : "model.embed_tokens.weight");
  const bool ggml_blocks = dtype_block_elems(probe.dtype) > 1;
  if (precision == "f32") w->precision = "f32";
  else if (precision == "int8" && !ggml_blocks) w->precision = "int8";
  else if (ggml_blocks) w->precision = lowercase(dtype_name(probe.dtype));
  else w->precision = wformat_name(mapped(probe, 1, 1).format);
  return w;
}

}  // namespace neoserve::cpu
