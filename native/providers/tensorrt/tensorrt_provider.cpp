// Read top to bottom: load (device, runtime, engine, I/O check, buffers),
// then step(): validate -> plan the engine calls (call_plan.h, which also
// documents the attention-mask and padding layout) -> for each call [stage
// inputs, upload, gather past, shapes, enqueueV3, scatter present, gather
// logits] -> copy the logits out after one stream synchronization.
#include "tensorrt_provider.h"

#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/model/mapped_file.h"
#include "core/model/shape_text.h"
#include "cuda_check.h"
#include "engine_description.h"

namespace neoserve::trt {

namespace {

constexpr size_t kMiB = size_t{1} << 20;

const EngineTensor* find_tensor(const EngineDescription& d, const std::string& name) {
  for (const EngineTensor& t : d.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

std::vector<int64_t> dims_vector(const nvinfer1::Dims& d) {
  if (d.nbDims < 0 || d.nbDims > nvinfer1::Dims::MAX_DIMS) return {};
  return std::vector<int64_t>(d.d, d.d + d.nbDims);
}

std::string mib_text(size_t bytes) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / static_cast<double>(kMiB));
  return text;
}

}  // namespace

// --- load ----------------------------------------------------------------------------

TensorRtProvider::TensorRtProvider(const TensorRtLoadRequest& request) {
  if (!request.manifest) throw Error(ErrorCode::Internal, "tensorrt provider: the load request has no manifest");
  if (!request.nvinfer) throw Error(ErrorCode::Internal, "tensorrt provider: the load request has no libnvinfer handle");
  // Its range is checked with the other load options (kvBlockSize, core/options.h); this C entry only
  // refuses a block size it would divide by.
  if (request.kv_block_size <= 0) throw_invalid("kv_block_size must be positive, got " + std::to_string(request.kv_block_size));
  const EngineManifest& m = *request.manifest;
  cfg_ = m.config;
  if (cfg_.num_hidden_layers <= 0 || cfg_.num_key_value_heads <= 0 || cfg_.head_dim <= 0 || cfg_.vocab_size <= 0 ||
      cfg_.max_position_embeddings <= 0)
    throw_load_error(m.path, "the model config has no layers, KV heads, head_dim, vocab_size or context to run");
  precision_ = m.precision;
  engine_file_ = m.engine_file;
  ids_name_ = m.io.input_ids;
  positions_name_ = m.io.position_ids;
  mask_name_ = m.io.attention_mask;
  logits_name_ = m.io.logits;
  for (int32_t l = 0; l < cfg_.num_hidden_layers; ++l) {
    past_names_.push_back(EngineIoNames::layer(m.io.past_key, l));
    past_names_.push_back(EngineIoNames::layer(m.io.past_value, l));
    present_names_.push_back(EngineIoNames::layer(m.io.present_key, l));
    present_names_.push_back(EngineIoNames::layer(m.io.present_value, l));
  }

  device_ = select_cuda_device(request.device ? request.device : "");
  cuda_check(cudaSetDevice(device_.ordinal), ("cannot use CUDA device " + device_.label).c_str(),
             ErrorCode::ProviderUnavailable);
  // Creates the device's context now, so that a broken device is reported as such.
  cuda_check(cudaFree(nullptr), ("cannot initialize CUDA on " + device_.label).c_str(), ErrorCode::ProviderUnavailable);
  // Fail the load, not every later step, on a GPU this build has no kernels for (auto then falls back).
  cuda_check(kernels_available(), ("this build of neoserve_tensorrt.so has no kernels for " + device_.label +
                                   " (set CMAKE_CUDA_ARCHITECTURES when building it)").c_str(),
             ErrorCode::ProviderUnavailable);
  stream_.create();

  load_engine(m, request.nvinfer);
  allocate(request);
  bind_addresses();
}

TensorRtProvider::~TensorRtProvider() {
  // The scheduler may destroy the provider from another thread than the one that stepped it.
  (void)cudaSetDevice(device_.ordinal);
  if (stream_.get()) (void)cudaStreamSynchronize(stream_.get());
  context_.reset();
  engine_.reset();
  runtime_.reset();
  (void)cudaGetLastError();
  // Buffers, events and the stream go with the members; the logger last.
}

void TensorRtProvider::load_engine(const EngineManifest& m, void* nvinfer) {
  // libnvinfer is not linked: its one C entry point is looked up in the
  // handle the core opened (and version-checked), as trtexec does when it
  // loads TensorRT dynamically. Everything else is a virtual call.
  using CreateRuntimeFn = void* (*)(void* logger, int32_t version);
  (void)dlerror();
  void* symbol = dlsym(nvinfer, "createInferRuntime_INTERNAL");
  if (!symbol) {
    const char* e = dlerror();
    unavailable(std::string("libnvinfer.so.10 does not export createInferRuntime_INTERNAL (") + (e ? e : "no symbol") +
                "): not a TensorRT 10 library");
  }
  auto create_runtime = reinterpret_cast<CreateRuntimeFn>(symbol);
  nvinfer1::ILogger* logger = &logger_;
  logger_.clear();
  runtime_.reset(static_cast<nvinfer1::IRuntime*>(create_runtime(logger, static_cast<int32_t>(NV_TENSORRT_VERSION))));
  if (!runtime_)
    unavailable(logger_.explain("TensorRT could not create a runtime (this provider was compiled against TensorRT " +
                                std::to_string(NV_TENSORRT_MAJOR) + "." + std::to_string(NV_TENSORRT_MINOR) + " headers)"));
  // A version-compatible engine carries its own lean runtime, which is host code TensorRT must be allowed to run.
  if (m.version_compatible) runtime_->setEngineHostCodeAllowed(true);

  {
    const MappedFile plan(m.engine_file);
    logger_.clear();
    engine_.reset(runtime_->deserializeCudaEngine(plan.data(), plan.size()));
  }
  if (!engine_) {
    const std::string why = logger_.take_last_error();
    // An engine built for another GPU cannot run here: with backend "auto" that falls back to the CPU.
    if (why.find("incompatible device") != std::string::npos || why.find("compute capability") != std::string::npos)
      unavailable(m.engine_file + " was built for another GPU than " + device_.label + " (compute capability " +
                  std::to_string(device_.cc_major) + "." + std::to_string(device_.cc_minor) + "): " + why +
                  "; rebuild the engine on this GPU type, or build it with --hardwareCompatibilityLevel=ampere+");
    throw_load_error(m.engine_file, "TensorRT cannot deserialize the engine" + (why.empty() ? std::string() : ": " + why));
  }

  check_io_layout(*engine_, m.engine_file);
  const EngineDescription description = describe_engine(*engine_);
  limits_ = validate_engine_io(m, description);

  // What the provider itself relies on beyond validate_engine_io's checks.
  const EngineTensor* mask = find_tensor(description, mask_name_);
  plan_limits_.max_past = limits_.max_past;
  plan_limits_.min_past = limits_.min_past;
  plan_limits_.mask_min = mask && mask->min.size() == 2 ? mask->min[1] : 0;
  if (limits_.max_past < 1)
    throw_load_error(m.engine_file, past_names_[0] + ": the profile allows no past positions, so nothing can be decoded");
  if (past_floor(plan_limits_, 1) > limits_.max_past)
    throw_load_error(m.engine_file, mask_name_ + ": the profile needs at least " + std::to_string(plan_limits_.mask_min) +
                                        " positions, more than a past of " + std::to_string(limits_.max_past) +
                                        " and one token can give");
  for (const EngineTensor& t : description.tensors) {
    if (!t.is_input || t.min.empty()) continue;
    if (t.min[0] > 1)
      throw_load_error(m.engine_file, t.name + ": the profile needs a batch of at least " + std::to_string(t.min[0]) +
                                          "; a lone request is a batch of 1");
    if ((t.name == ids_name_ || t.name == positions_name_) && t.min.size() == 2 && t.min[1] > 1)
      throw_load_error(m.engine_file, t.name + ": the profile needs at least " + std::to_string(t.min[1]) +
                                          " tokens per call; decoding feeds 1");
  }
  if (limits_.kv_dtype != EngineDType::Float16 && limits_.kv_dtype != EngineDType::Float32 &&
      limits_.kv_dtype != EngineDType::BFloat16)
    throw_load_error(m.engine_file, past_names_[0] + ": unsupported KV dtype " + engine_dtype_name(limits_.kv_dtype));

  logger_.clear();
  context_.reset(engine_->createExecutionContext());
  if (!context_)
    unavailable(logger_.explain("TensorRT could not create an execution context for " + m.engine_file + " on " +
                                device_.label + " (usually not enough device memory for its activations)"));
}

// Device bytes of the scratch buffers when decode calls take up to `batch`
// sequences and prefill calls up to `chunk` tokens. Decode calls are
// [batch, 1] after up to max_past positions; prefill calls [1, chunk].
size_t TensorRtProvider::scratch_bytes(int64_t batch, int64_t chunk) const {
  const auto max_past = static_cast<size_t>(limits_.max_past);
  const auto b = static_cast<size_t>(batch), t = static_cast<size_t>(chunk);
  const size_t layers2 = past_names_.size();
  const size_t present_positions = std::max(b * (max_past + 1), max_past + t);
  const size_t tokens = std::max(b, t);
  const size_t rows = std::max<size_t>(b, 64);
  const auto vocab = static_cast<size_t>(cfg_.vocab_size);
  return layers2 * align256(b * max_past * position_bytes_) + layers2 * align256(present_positions * position_bytes_) +
         2 * align256(tokens * ids_elem_) + align256(present_positions * mask_elem_) +
         align256(tokens * vocab * logits_elem_) + align256(rows * vocab * sizeof(float)) + align256(b * sizeof(KvSeq)) +
         align256(b * static_cast<size_t>(max_blocks_per_seq_) * sizeof(int32_t));
}

void TensorRtProvider::allocate(const TensorRtLoadRequest& request) {
  const int32_t layers2 = static_cast<int32_t>(past_names_.size());
  kv_elem_ = engine_dtype_size(limits_.kv_dtype);
  ids_elem_ = engine_dtype_size(limits_.ids_dtype);
  mask_elem_ = engine_dtype_size(limits_.mask_dtype);
  logits_elem_ = engine_dtype_size(limits_.logits_dtype);
  const size_t row_bytes = static_cast<size_t>(cfg_.head_dim) * kv_elem_;
  position_bytes_ = static_cast<size_t>(cfg_.num_key_value_heads) * row_bytes;
  const int32_t block_size = request.kv_block_size;
  bytes_per_block_ = static_cast<size_t>(layers2) * static_cast<size_t>(block_size) * position_bytes_;
  geom_ = {layers2, cfg_.num_key_value_heads, block_size, row_bytes, bytes_per_block_};
  PlanLimits& pl = plan_limits_;
  pl.vocab = cfg_.vocab_size;
  pl.max_position_embeddings = cfg_.max_position_embeddings;
  pl.block_size = block_size;

  // Every position below max_context can be fed, including a decode token at
  // max_context - 1 (its past, max_context - 1 positions, fits the profile).
  // Prefill chunks may end later (up to max_past + tokens per call), but a
  // sequence that got there could not decode its next token.
  pl.max_context = static_cast<int32_t>(std::min<int64_t>(cfg_.max_position_embeddings, limits_.max_past + 1));
  const int64_t step_limit = std::min<int64_t>(cfg_.max_position_embeddings, limits_.max_past + limits_.max_tokens);
  max_blocks_per_seq_ = static_cast<int32_t>((step_limit + block_size - 1) / block_size);

  // Scratch at the profile's limits, smaller calls if that does not fit: by
  // default scratch may take half of the free memory, the KV cache most of the rest.
  size_t free_bytes = 0, total_bytes = 0;
  cuda_check(cudaMemGetInfo(&free_bytes, &total_bytes), "cannot read free device memory", ErrorCode::ProviderUnavailable);
  const size_t margin = std::min<size_t>(256 * kMiB, total_bytes / 16);
  size_t budget = free_bytes / 2;
  if (request.kv_memory_bytes > 0)
    budget = free_bytes > request.kv_memory_bytes + margin ? free_bytes - request.kv_memory_bytes - margin : 0;
  int64_t batch = std::min<int64_t>(limits_.max_batch, 65535);
  int64_t chunk = std::min<int64_t>(limits_.max_tokens, INT32_MAX / 2);
  while (scratch_bytes(batch, chunk) > budget) {
    if (batch == 1 && chunk == 1)
      out_of_memory("not enough device memory on " + device_.label + " for " + engine_file_ + ": one engine call over a past of " +
                  std::to_string(limits_.max_past) + " positions needs " + mib_text(scratch_bytes(1, 1)) +
                  " of scratch buffers, " + mib_text(budget) + " can be spared (" + mib_text(free_bytes) + " free" +
                  (request.kv_memory_bytes ? ", kvMemoryBytes " + mib_text(request.kv_memory_bytes) : std::string()) + ")");
    if (batch > 1 && (batch >= chunk || chunk == 1)) batch = (batch + 1) / 2;
    else chunk = (chunk + 1) / 2;
  }
  pl.batch_cap = static_cast<int32_t>(batch);
  pl.chunk_cap = static_cast<int32_t>(chunk);
  if (pl.batch_cap < limits_.max_batch || pl.chunk_cap < limits_.max_tokens)
    std::fprintf(stderr,
                 "neoserve tensorrt: engine calls limited to %d sequences and %d prefill tokens (the profile allows %lld "
                 "and %lld) to fit the device memory of %s\n",
                 pl.batch_cap, pl.chunk_cap, static_cast<long long>(limits_.max_batch),
                 static_cast<long long>(limits_.max_tokens), device_.label.c_str());
  rows_cap_ = std::max(pl.batch_cap, 64);

  const auto max_past = static_cast<size_t>(limits_.max_past);
  const auto b = static_cast<size_t>(pl.batch_cap), t = static_cast<size_t>(pl.chunk_cap);
  const size_t present_positions = std::max(b * (max_past + 1), max_past + t);
  const size_t tokens = std::max(b, t);
  const auto vocab = static_cast<size_t>(cfg_.vocab_size);
  const size_t table_ints = b * static_cast<size_t>(max_blocks_per_seq_);
  past_stride_ = align256(b * max_past * position_bytes_);
  present_stride_ = align256(present_positions * position_bytes_);
  past_.allocate(past_stride_ * past_names_.size(), "the past_key_values tensors");
  present_.allocate(present_stride_ * present_names_.size(), "the present tensors");
  ids_.allocate(align256(tokens * ids_elem_), "input_ids");
  positions_.allocate(align256(tokens * ids_elem_), "position_ids");
  mask_.allocate(align256(present_positions * mask_elem_), "attention_mask");
  logits_.allocate(align256(tokens * vocab * logits_elem_), "the logits output");
  rows_.allocate(static_cast<size_t>(rows_cap_) * vocab * sizeof(float), "logits rows");
  seqs_.allocate(b * sizeof(KvSeq), "call descriptors");
  tables_.allocate(table_ints * sizeof(int32_t), "block tables");
  host_rows_.allocate(static_cast<size_t>(rows_cap_) * vocab * sizeof(float), "logits rows");
  for (Staging& s : staging_) {
    s.seqs.allocate(b * sizeof(KvSeq), "call descriptors");
    s.tables.allocate(table_ints * sizeof(int32_t), "block tables");
    s.ids.allocate(tokens * ids_elem_, "input_ids");
    s.positions.allocate(tokens * ids_elem_, "position_ids");
    s.mask.allocate(present_positions * mask_elem_, "attention_mask");
    s.uploaded.create();
  }

  // The KV cache: kv_memory_bytes, or 60% of what is free now, capped at the
  // profile's batch of sequences at full context.
  cuda_check(cudaMemGetInfo(&free_bytes, &total_bytes), "cannot read free device memory", ErrorCode::ProviderUnavailable);
  size_t blocks = 0;
  if (request.kv_memory_bytes > 0) {
    blocks = request.kv_memory_bytes / bytes_per_block_;
    if (blocks < 1)
      throw_invalid("kvMemoryBytes is smaller than one KV block (" + std::to_string(bytes_per_block_) + " bytes)");
  } else {
    const size_t blocks_per_seq = (static_cast<size_t>(pl.max_context) + block_size - 1) / block_size;
    const size_t cap = static_cast<size_t>(limits_.max_batch) * blocks_per_seq;
    blocks = std::min(free_bytes / 10 * 6 / bytes_per_block_, cap);
    if (blocks < 1)
      out_of_memory("no device memory left on " + device_.label + " for the KV cache (" + mib_text(free_bytes) +
                  " free after the engine, one block is " + mib_text(bytes_per_block_) + ")");
  }
  blocks = std::min<size_t>(blocks, INT32_MAX);
  kv_cache_.allocate(blocks * bytes_per_block_, "the KV cache");
  pl.num_blocks = static_cast<int32_t>(blocks);
  // Never read before written; zeroed so that a stray read is a wrong number, not a NaN.
  cuda_check(cudaMemsetAsync(kv_cache_.get(), 0, kv_cache_.size(), stream_.get()), "cannot clear the KV cache");
  cuda_check(cudaStreamSynchronize(stream_.get()), "cannot clear the KV cache", ErrorCode::ProviderUnavailable);
}

void TensorRtProvider::bind_addresses() {
  // The buffers never move, so the addresses are set once for every call.
  auto bind = [&](const std::string& name, void* address) {
    if (!context_->setTensorAddress(name.c_str(), address))
      throw Error(ErrorCode::Internal, "tensorrt provider: " + logger_.explain("TensorRT refused the address of " + name));
  };
  bind(ids_name_, ids_.get());
  bind(positions_name_, positions_.get());
  bind(mask_name_, mask_.get());
  bind(logits_name_, logits_.get());
  for (size_t t = 0; t < past_names_.size(); ++t) {
    bind(past_names_[t], past_.bytes_at(t * past_stride_));
    bind(present_names_[t], present_.bytes_at(t * present_stride_));
  }
}

ProviderInfo TensorRtProvider::info() const {
  ProviderInfo i;
  i.name = "tensorrt";
  i.device = device_.label;
  i.precision = precision_;
  i.vocab_size = cfg_.vocab_size;
  i.max_context = plan_limits_.max_context;
  i.eos_token_ids = cfg_.eos_token_ids;
  return i;
}

KvGeometry TensorRtProvider::kv() const { return {plan_limits_.block_size, bytes_per_block_, plan_limits_.num_blocks}; }

// --- one step ------------------------------------------------------------------------

void TensorRtProvider::step(std::span<const SeqStep> batch, LogitsOut& out) {
  validate_batch(batch, plan_limits_);  // before anything touches the device
  plan_.build(batch, plan_limits_);
  out.vocab = cfg_.vocab_size;
  out.rows = plan_.rows;
  out.data.resize(static_cast<size_t>(plan_.rows) * static_cast<size_t>(cfg_.vocab_size));
  if (plan_.calls.empty()) return;

  cuda_check(cudaSetDevice(device_.ordinal), "cannot select the provider's CUDA device");
  staged_out_.clear();
  for (size_t i = 0; i < plan_.calls.size(); ++i) run_call(i, batch, out);
  flush_logits(out);
}

void TensorRtProvider::run_call(size_t index, std::span<const SeqStep> batch, LogitsOut& out) {
  const Call& call = plan_.calls[index];
  const int32_t B = call.count, P = call.past, S = call.tokens, width = P + S;
  const CallSeq* seqs = plan_.seqs.data() + call.first;
  int32_t rows = 0;
  for (int32_t b = 0; b < B; ++b) rows += seqs[b].out_row >= 0 ? 1 : 0;
  if (static_cast<int32_t>(staged_out_.size()) + rows > rows_cap_) flush_logits(out);

  // --- inputs, on the host, once the slot's previous uploads are done
  Staging& stage = staging_[index % kStagingSlots];
  cuda_check(cudaEventSynchronize(stage.uploaded.get()), "waiting for a staging buffer");
  CallInputs in;
  in.seqs = stage.seqs.as<KvSeq>();
  in.tables = stage.tables.as<int32_t>();
  in.ids = stage.ids.get();
  in.positions = stage.positions.get();
  in.mask = stage.mask.get();
  in.ids64 = limits_.ids_dtype == EngineDType::Int64;
  in.mask64 = limits_.mask_dtype == EngineDType::Int64;
  const int32_t table_stride = fill_call_inputs(call, seqs, batch, plan_limits_.block_size, in, staged_out_);

  // --- upload, gather the past, run, scatter the present, gather logits: all on stream_
  const cudaStream_t stream = stream_.get();
  const size_t tokens = static_cast<size_t>(B) * S;
  cuda_check(cudaMemcpyAsync(seqs_.get(), in.seqs, B * sizeof(KvSeq), cudaMemcpyHostToDevice, stream), "upload call descriptors");
  cuda_check(cudaMemcpyAsync(tables_.get(), in.tables, static_cast<size_t>(B) * table_stride * sizeof(int32_t),
                             cudaMemcpyHostToDevice, stream), "upload block tables");
  cuda_check(cudaMemcpyAsync(ids_.get(), in.ids, tokens * ids_elem_, cudaMemcpyHostToDevice, stream), "upload input_ids");
  cuda_check(cudaMemcpyAsync(positions_.get(), in.positions, tokens * ids_elem_, cudaMemcpyHostToDevice, stream),
             "upload position_ids");
  cuda_check(cudaMemcpyAsync(mask_.get(), in.mask, static_cast<size_t>(B) * width * mask_elem_, cudaMemcpyHostToDevice, stream),
             "upload attention_mask");
  cuda_check(cudaEventRecord(stage.uploaded.get(), stream), "record a staging event");

  const KvCallArgs args{B, P, S, seqs_.as<const KvSeq>(), tables_.as<const int32_t>(), table_stride};
  cuda_check(gather_past(geom_, args, kv_cache_.get(), past_.get(), past_stride_, stream), "gather the past KV");

  logger_.clear();
  // The context keeps its input shapes: set (and check the outputs) only when the call's shape changes,
  // which for a steady decode batch is rarely.
  if (const std::array<int64_t, 3> shape{B, P, S}; shape != context_shape_) {
    context_shape_ = {-1, -1, -1};  // unknown until every shape below is set
    set_input_shape(ids_name_, {B, S});
    set_input_shape(positions_name_, {B, S});
    set_input_shape(mask_name_, {B, width});
    for (const std::string& name : past_names_) set_input_shape(name, {B, cfg_.num_key_value_heads, P, cfg_.head_dim});
    // The scatter and the logits gather read the outputs at these shapes.
    expect_output_shape(logits_name_, {B, S, cfg_.vocab_size});
    for (const std::string& name : present_names_)
      expect_output_shape(name, {B, cfg_.num_key_value_heads, width, cfg_.head_dim});
    context_shape_ = shape;
  }

  if (!context_->enqueueV3(stream))
    throw Error(ErrorCode::Internal, "tensorrt provider: " + logger_.explain("enqueueV3 failed for a call of " +
                                                                              std::to_string(B) + " x " + std::to_string(S) +
                                                                              " tokens after " + std::to_string(P) + " past positions"));

  cuda_check(scatter_present(geom_, args, present_.get(), present_stride_, kv_cache_.get(), stream), "scatter the present KV");
  if (rows > 0)
    cuda_check(gather_logits(args, logits_.get(), limits_.logits_dtype == EngineDType::Float16, cfg_.vocab_size,
                             rows_.as<float>(), stream),
               "gather logits");
}

// Copies the staged logits rows out: the step's one stream synchronization
// (more only when a step wants more rows than rows_cap_).
void TensorRtProvider::flush_logits(LogitsOut& out) {
  const cudaStream_t stream = stream_.get();
  const auto vocab = static_cast<size_t>(cfg_.vocab_size);
  const size_t rows = staged_out_.size();
  if (rows > 0)
    cuda_check(cudaMemcpyAsync(host_rows_.get(), rows_.get(), rows * vocab * sizeof(float), cudaMemcpyDeviceToHost, stream),
               "copy logits to the host");
  cuda_check(cudaStreamSynchronize(stream), "TensorRT step");
  const float* src = host_rows_.as<const float>();
  for (size_t r = 0; r < rows; ++r)
    std::memcpy(out.data.data() + static_cast<size_t>(staged_out_[r]) * vocab, src + r * vocab, vocab * sizeof(float));
  staged_out_.clear();
}

void TensorRtProvider::set_input_shape(const std::string& name, std::initializer_list<int64_t> dims) {
  nvinfer1::Dims d{};
  d.nbDims = static_cast<int32_t>(dims.size());
  std::copy(dims.begin(), dims.end(), d.d);
  if (!context_->setInputShape(name.c_str(), d))
    throw Error(ErrorCode::Internal, "tensorrt provider: " + logger_.explain("TensorRT refused shape " +
                                                                              shape_text(std::vector<int64_t>(dims)) +
                                                                              " for input " + name));
}

void TensorRtProvider::expect_output_shape(const std::string& name, std::initializer_list<int64_t> dims) {
  const std::vector<int64_t> got = dims_vector(context_->getTensorShape(name.c_str()));
  const std::vector<int64_t> want(dims);
  if (got != want)
    throw Error(ErrorCode::Internal, "tensorrt provider: " + logger_.explain("output " + name + " has shape " + shape_text(got) +
                                                                              " for this call, expected " + shape_text(want)));
}

}  // namespace neoserve::trt
