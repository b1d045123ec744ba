// The TensorRT provider: runs a TensorRT 10 engine exported with the Hugging
// Face Optimum text-generation-with-past I/O contract over the scheduler's
// ragged batches, with the paged KV cache in device memory.
//
// The engine takes dense past tensors and returns dense present tensors, so
// each engine call gathers its sequences' blocks into past_key_values.*,
// runs, and scatters the new positions of present.* back into the blocks.
// A step becomes several engine calls: the decode sequences (one token each)
// in groups of at most the profile's batch, and each prefill chunk alone
// (split when longer than the profile's tokens per call). Everything runs on
// the provider's own stream with buffers allocated once at load; a step ends
// with a single cudaStreamSynchronize.
#pragma once
#include <NvInferRuntime.h>

#include <array>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/model/engine_io.h"
#include "call_plan.h"
#include "core/provider.h"
#include "cuda_memory.h"
#include "device.h"
#include "entry.h"
#include "kv_kernels.h"
#include "trt_logger.h"

namespace neoserve::trt {

class TensorRtProvider final : public Provider {
 public:
  // Throws ProviderUnavailable (no device, not enough device memory, TensorRT
  // refuses the engine on this GPU), ModelLoadFailed (the engine does not
  // match its manifest) or InvalidRequest (a bad option).
  explicit TensorRtProvider(const TensorRtLoadRequest& request);
  ~TensorRtProvider() override;
  TensorRtProvider(const TensorRtProvider&) = delete;
  TensorRtProvider& operator=(const TensorRtProvider&) = delete;

  ProviderInfo info() const override;
  KvGeometry kv() const override;
  // Not reentrant: one caller at a time (the scheduler's loop), from any thread.
  void step(std::span<const SeqStep> batch, LogitsOut& out) override;

 private:
  // Pinned host inputs of one call. `uploaded` is recorded once their copies
  // to the device are queued, so that a later call waits for it before
  // overwriting them.
  struct Staging {
    PinnedBuffer seqs, tables, ids, positions, mask;
    CudaEvent uploaded;
  };
  static constexpr int kStagingSlots = 4;

  void load_engine(const EngineManifest& manifest, void* nvinfer);
  void allocate(const TensorRtLoadRequest& request);
  size_t scratch_bytes(int64_t batch, int64_t chunk) const;
  void bind_addresses();

  void run_call(size_t index, std::span<const SeqStep> batch, LogitsOut& out);
  void flush_logits(LogitsOut& out);
  void set_input_shape(const std::string& name, std::initializer_list<int64_t> dims);
  std::array<int64_t, 3> context_shape_{-1, -1, -1};  // (B, P, S) the context's input shapes were last set for
  void expect_output_shape(const std::string& name, std::initializer_list<int64_t> dims);

  // --- what was loaded
  CudaDevice device_;
  LlamaConfig cfg_;
  std::string precision_;
  std::string engine_file_;
  std::string ids_name_, positions_name_, mask_name_, logits_name_;
  std::vector<std::string> past_names_, present_names_;  // [layer * 2 + (0 key | 1 value)]
  EngineLimits limits_;
  // The batching limits: vocabulary, context, KV blocks, the profile's past
  // range, and the calls' sizes (at most the profile's batch and tokens, less
  // when device memory is short). max_context: every position below it can
  // be fed, including a decode token at max_context - 1.
  PlanLimits plan_limits_;
  int32_t rows_cap_ = 1;  // logits rows staged on the device before a copy out

  // --- geometry
  KvGeometryArgs geom_{};
  size_t kv_elem_ = 2, ids_elem_ = 8, mask_elem_ = 8, logits_elem_ = 4;
  size_t position_bytes_ = 0;  // one position of one layer's K (or V): kv_heads * head_dim elements
  size_t bytes_per_block_ = 0;
  int32_t max_blocks_per_seq_ = 0;
  size_t past_stride_ = 0, present_stride_ = 0;  // bytes between consecutive past (present) tensors

  // --- CUDA and TensorRT resources, freed in reverse order (the destructor
  // also releases the TensorRT objects explicitly after synchronizing).
  TrtLogger& logger_ = TrtLogger::instance();
  CudaStream stream_;
  DeviceBuffer kv_cache_;
  DeviceBuffer past_, present_;
  DeviceBuffer ids_, positions_, mask_, logits_;
  DeviceBuffer seqs_, tables_;
  DeviceBuffer rows_;           // fp32 logits rows, [rows_cap_][vocab]
  PinnedBuffer host_rows_;      // their copy on the host
  std::array<Staging, kStagingSlots> staging_;
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  std::unique_ptr<nvinfer1::ICudaEngine> engine_;
  std::unique_ptr<nvinfer1::IExecutionContext> context_;

  // --- per step, reused
  CallPlan plan_;
  std::vector<int32_t> staged_out_;  // LogitsOut row of each staged row
};

}  // namespace neoserve::trt
