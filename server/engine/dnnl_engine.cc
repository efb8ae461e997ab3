#include "server/engine/dnnl_engine.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "dnnl.hpp"
#include "server/common/status_macros.h"
#include "server/engine/batch_data.h"
#include "server/engine/call_context.h"
#include "server/engine/head.h"
#include "server/engine/item_checks.h"
#include "server/engine/lru_cache.h"
#include "server/engine/recurrent_plan.h"
#include "server/engine/segment_plan.h"

namespace rnnserve::engine {
namespace {

// The state an item starts from and ends in; null means zeros in, nothing
// out.
template <typename Item>
const float* StateIn(const Item& item) {
  return item.state_in.empty() ? nullptr : item.state_in.data();
}
template <typename Item>
float* StateOut(const Item& item) {
  return item.state_out.empty() ? nullptr : item.state_out.data();
}

// Where an item's state waits between two segments: a chunk's own
// state_out (each segment's state overwrites the last), a classified
// sequence's slot in the workspace.
float* Carry(const ClassifyItem&, float* slot) { return slot; }
float* Carry(const RegressItem& item, float*) { return item.state_out.data(); }

// Distinguishes engines in the threads' one-entry context caches; unlike an
// address, never reused.
uint64_t NextEngineId() {
  static std::atomic<uint64_t> next{1};
  return next++;
}

class DnnlEngine final : public Engine {
 public:
  DnnlEngine(const model::Model& model, const DnnlEngineOptions& options)
      : cpu_(dnnl::engine::kind::cpu, 0),
        config_(model.config),
        embedding_(model.embedding_weight),
        head_(model),
        builder_(cpu_, model),
        plans_(options.max_cached_plans) {}

  absl::Status Classify(std::span<const ClassifyItem> items) override;
  absl::Status Regress(std::span<const RegressItem> items) override;
  absl::Status Warmup(int steps, int batch) override;

  const model::ModelConfig& config() const override { return config_; }
  EngineStats stats() const override {
    return {plans_created_, builder_.primitives_created(),
            builder_.weight_reorders(), executions_};
  }

 private:
  // Sequences beyond this run in further batches; bounds buffer sizes.
  static constexpr int kMaxBatch = 1024;
  // Longer unidirectional runs are cut and chained: per step, one run of 500
  // steps of fashion_lstm at batch 64 was 5x slower than eight of 64 (we
  // suppose its per-step buffers outgrow the caches); BENCHMARKS.md, 6.
  static constexpr int kMaxSegmentSteps = 64;
  // A thread keeps its buffers between calls up to this size; steady
  // traffic stays far below it.
  static constexpr size_t kKeepWorkspaceBytes = size_t{64} << 20;

  absl::StatusOr<std::shared_ptr<const Plan>> GetPlan(int steps, int batch);
  // The calling thread's context on this engine, made on its first call.
  CallContext& Context();
  // Runs `batch` and leaves the last group's output in the returned buffer,
  // (steps, batch, dirs * hidden).
  absl::StatusOr<const float*> Run(const Batch& batch, CallContext& context);
  // Runs plan group `g` of `batch` from `layer_in` into `layer_out`, its
  // states gathered from and scattered to the batch's items. Throws
  // dnnl::error.
  void RunGroup(const Batch& batch, size_t g, const Plan& plan, GroupArgs& a,
                const float* layer_in, float* layer_out, CallContext& context);
  // The body Classify and Regress share: checks each item (item_checks.h),
  // runs the items in segments (see
  // segment_plan.h; padded ones only if `pad`), and hands each item each
  // segment's output through `emit`.
  template <typename Item, typename Emit>
  absl::Status RunItems(std::span<const Item> items, bool pad, Emit emit);
  // Points the workspace's batch vectors at `segment`'s items.
  template <typename Item>
  void FillBatch(std::span<const Item> items, const Segment& segment,
                 Workspace& ws) const;

  const dnnl::engine cpu_;
  const model::ModelConfig config_;
  const std::vector<float> embedding_;  // Empty without an embedding.
  const Head head_;
  PlanBuilder builder_;
  const std::vector<LayerGroup> groups_ = PlanLayerGroups(config_);
  LruCache<std::pair<int, int>, Plan> plans_;
  std::atomic<int64_t> plans_created_{0};
  std::atomic<int64_t> executions_{0};
  // The step buckets of unidirectional runs (segment_plan.h): powers of two
  // up to kMaxSegmentSteps, and the step counts warm-up was given. Only
  // grows; a call reads it once.
  std::atomic<uint64_t> step_buckets_{kPowerOfTwoSteps};
  const uint64_t id_ = NextEngineId();
  absl::Mutex contexts_mu_;
  // One per thread that has called; they live as long as the engine.
  absl::flat_hash_map<std::thread::id, std::unique_ptr<CallContext>> contexts_
      ABSL_GUARDED_BY(contexts_mu_);
};

CallContext& DnnlEngine::Context() {
  // Threads call the same engine again and again: remember the last one's
  // context and take the lock only when the engine changes.
  thread_local uint64_t last_engine = 0;
  thread_local CallContext* last_context = nullptr;
  if (last_engine == id_) return *last_context;
  absl::MutexLock lock(&contexts_mu_);
  std::unique_ptr<CallContext>& context = contexts_[std::this_thread::get_id()];
  if (context == nullptr) context = std::make_unique<CallContext>(cpu_);
  last_engine = id_;
  last_context = context.get();
  return *context;
}

absl::StatusOr<std::shared_ptr<const Plan>> DnnlEngine::GetPlan(int steps,
                                                                int batch) {
  const std::pair<int, int> key(steps, batch);
  if (auto plan = plans_.Find(key)) return plan;
  // Made outside any lock: making takes milliseconds and other shapes must
  // not wait. Two threads may race to make the same shape; one copy wins.
  try {
    auto plan = builder_.Build(steps, batch);
    ++plans_created_;
    return plans_.Insert(key, std::move(plan));
  } catch (const dnnl::error& e) {
    return absl::InternalError(
        absl::StrCat("oneDNN refused shape steps=", steps, " batch=", batch,
                     " of ", config_.name, ": ", e.what()));
  }
}

void DnnlEngine::RunGroup(const Batch& batch, size_t g, const Plan& plan,
                          GroupArgs& a, const float* layer_in, float* layer_out,
                          CallContext& context) {
  const GroupPrimitive& p = plan.groups[g];
  const LayerGroup& group = groups_[g];
  Workspace& ws = context.workspace();
  const bool lstm = config_.cell == model::Cell::kLstm;
  const size_t state_floats = p.state.get_size() / sizeof(float);
  float* state_in = Reserve(ws.state_in, state_floats);
  float* state_out = Reserve(ws.state_out, state_floats);
  GatherState(config_, batch, group, false, state_in);
  a.src_layer.set_data_handle(const_cast<float*>(layer_in));
  a.dst_layer.set_data_handle(layer_out);
  a.state_in.set_data_handle(state_in);
  a.state_out.set_data_handle(state_out);
  a.scratchpad.set_data_handle(ws.scratchpad.data());
  // The C call takes a plain array; the C++ one wants a hash map.
  dnnl_exec_arg_t args[10] = {
      {DNNL_ARG_SRC_LAYER, a.src_layer.get()},
      {DNNL_ARG_SRC_ITER, a.state_in.get()},
      {DNNL_ARG_WEIGHTS_LAYER, p.weights_layer.get()},
      {DNNL_ARG_WEIGHTS_ITER, p.weights_iter.get()},
      {DNNL_ARG_BIAS, p.bias.get()},
      {DNNL_ARG_DST_LAYER, a.dst_layer.get()},
      {DNNL_ARG_DST_ITER, a.state_out.get()},
      {DNNL_ARG_SCRATCHPAD, a.scratchpad.get()},
  };
  int num_args = 8;
  float* cell_out = nullptr;
  if (lstm) {
    float* cell_in = Reserve(ws.cell_in, state_floats);
    cell_out = Reserve(ws.cell_out, state_floats);
    GatherState(config_, batch, group, true, cell_in);
    a.cell_in.set_data_handle(cell_in);
    a.cell_out.set_data_handle(cell_out);
    args[num_args++] = {DNNL_ARG_SRC_ITER_C, a.cell_in.get()};
    args[num_args++] = {DNNL_ARG_DST_ITER_C, a.cell_out.get()};
  }
  dnnl::error::wrap_c_api(
      dnnl_primitive_execute(p.primitive.get(), context.stream().get(),
                             num_args, args),
      "could not execute a primitive");
  context.stream().wait();
  ++executions_;
  ScatterState(config_, batch, group, false, state_out);
  if (lstm) ScatterState(config_, batch, group, true, cell_out);
}

absl::StatusOr<const float*> DnnlEngine::Run(const Batch& batch,
                                             CallContext& context) {
  Workspace& ws = context.workspace();
  ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan,
                   GetPlan(batch.steps, batch.size()));
  const float* layer_in = CopyInputs(config_, batch, embedding_, ws.src);
  const size_t layer_floats = static_cast<size_t>(batch.steps) * batch.size() *
                              config_.num_directions() * config_.hidden_size;
  if (ws.scratchpad.size() < plan->scratchpad_bytes) {
    ws.scratchpad.resize(plan->scratchpad_bytes);
  }
  try {
    std::vector<GroupArgs>& bound =
        context.Bind(*plan, config_.cell == model::Cell::kLstm);
    float* layer_out = nullptr;
    for (size_t g = 0; g < plan->groups.size(); ++g) {
      layer_out = Reserve(ws.layer[g % 2], layer_floats);
      RunGroup(batch, g, *plan, bound[g], layer_in, layer_out, context);
      layer_in = layer_out;
    }
    return layer_out;
  } catch (const dnnl::error& e) {
    return absl::InternalError(
        absl::StrCat("oneDNN failed to run ", config_.name, ": ", e.what()));
  }
}

template <typename Item>
void DnnlEngine::FillBatch(std::span<const Item> items, const Segment& segment,
                           Workspace& ws) const {
  ws.inputs.clear();
  ws.tokens.clear();
  ws.valid.clear();
  ws.states_in.clear();
  ws.states_out.clear();
  const size_t input = config_.input_size;
  const size_t state = config_.state_size();
  const int end = segment.start + segment.steps;
  for (int p = segment.begin; p < segment.end; ++p) {
    const Item& item = items[ws.order[p]];
    // Only one of the two is non-empty (CheckItem).
    ws.inputs.push_back(item.inputs.empty()
                            ? nullptr
                            : item.inputs.data() + segment.start * input);
    ws.tokens.push_back(
        item.tokens.empty() ? nullptr : item.tokens.data() + segment.start);
    ws.valid.push_back(std::min(item.steps, end) - segment.start);
    // Segments are planned in blocks of kMaxBatch items of the order, so
    // p % kMaxBatch is the item's own slot within its block.
    float* slot =
        ws.carry.empty() ? nullptr : ws.carry.data() + (p % kMaxBatch) * state;
    float* carry = Carry(item, slot);
    ws.states_in.push_back(segment.start == 0 ? StateIn(item) : carry);
    ws.states_out.push_back(item.steps > end ? carry : StateOut(item));
  }
  // Rows of zeros up to the batch bucket: rows are independent, and these
  // are never read.
  for (int p = segment.end - segment.begin; p < segment.rows; ++p) {
    ws.inputs.push_back(nullptr);
    ws.tokens.push_back(nullptr);
    ws.valid.push_back(0);
    ws.states_in.push_back(nullptr);
    ws.states_out.push_back(nullptr);
  }
}

template <typename Item, typename Emit>
absl::Status DnnlEngine::RunItems(std::span<const Item> items, bool pad,
                                  Emit emit) {
  CallContext& context = Context();
  Workspace& ws = context.workspace();
  // A rare huge call must not pin its buffers on this thread for good.
  absl::Cleanup trim = [&ws] { ws.TrimAbove(kKeepWorkspaceBytes); };
  ws.steps.resize(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    RETURN_IF_ERROR(CheckItem(config_, i, item));
    ws.steps[i] = item.steps;
  }
  if (config_.bidirectional) {
    // Exact lengths: the reverse direction starts at each one's true end.
    PlanByLength(ws.steps, kMaxBatch, ws.order, ws.segments);
  } else {
    const uint64_t buckets = step_buckets_.load(std::memory_order_relaxed);
    if (pad) {
      PlanBucketed(ws.steps, kMaxBatch, buckets, ws.segment_scratch, ws.order,
                   ws.segments);
    } else {
      PlanChained(ws.steps, kMaxBatch, kMaxSegmentSteps, pad,
                  ws.segment_scratch, ws.order, ws.segments);
      FitStepBuckets(ws.steps, ws.order, buckets, ws.segments, ws.fitted);
    }
  }
  for (Segment& s : ws.segments) s.rows = BatchBucket(s.end - s.begin);
  ws.carry.clear();
  if (std::is_same_v<Item, ClassifyItem> &&
      std::any_of(ws.segments.begin(), ws.segments.end(),
                  [](const Segment& s) { return s.start > 0; })) {
    Reserve(ws.carry,
            std::min<size_t>(items.size(), kMaxBatch) * config_.state_size());
  }
  for (const Segment& segment : ws.segments) {
    FillBatch(items, segment, ws);
    const Batch batch{segment.steps,
                      segment.start,
                      ws.inputs,
                      ws.valid,
                      ws.states_in,
                      ws.states_out,
                      config_.has_embedding() ? &ws.tokens : nullptr};
    ASSIGN_OR_RETURN(const float* out, Run(batch, context));
    for (int b = 0; b < segment.end - segment.begin; ++b) {
      emit(items[ws.order[segment.begin + b]], batch, out, b);
    }
  }
  return absl::OkStatus();
}

absl::Status DnnlEngine::Classify(std::span<const ClassifyItem> items) {
  const size_t state = config_.classify_state_size();
  bool parts = false;  // Whether any item starts or ends inside a sequence.
  for (const ClassifyItem& item : items) {
    parts = parts || !item.state_in.empty() || !item.state_out.empty();
  }
  if (parts && config_.bidirectional) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model ", config_.name,
        " is bidirectional: it classifies whole sequences, not parts"));
  }
  const size_t width = config_.readout_size();
  const size_t carry = ReadoutCarry(config_);
  Workspace& ws = Context().workspace();
  float* acc = Reserve(ws.readout, items.size() * carry);
  float* head_in = Reserve(ws.head, width + head_.scratch_size());
  const auto emit = [&](const ClassifyItem& item, const Batch& batch,
                        const float* out, int b) {
    float* own = acc + (&item - items.data()) * carry;
    if (carry > 0) AccumulateReadout(config_, item, batch, out, b, own);
    // Only the segment where the sequence ends has its last step.
    if (item.steps > batch.start + batch.steps) return;
    if (item.logits.empty()) {
      // A part before the last: its readout so far goes on with its state.
      if (carry > 0 && !item.state_out.empty()) {
        std::copy(own, own + carry, item.state_out.data() + state - carry);
      }
      return;
    }
    const float* r = ReadoutOf(config_, item, batch, out, b, own, head_in);
    head_.Apply(r, item.logits.data(), head_in + width);
    if (!item.probabilities.empty()) Softmax(item.logits, item.probabilities);
  };
  // Padding would run a part past its end and spoil the state it leaves.
  return RunItems(items, /*pad=*/!parts, emit);
}

absl::Status DnnlEngine::Regress(std::span<const RegressItem> items) {
  if (config_.bidirectional) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model ", config_.name,
        " is bidirectional: it needs whole sequences, not chunks"));
  }
  const size_t outputs = config_.output_size;
  const size_t width = config_.hidden_size;  // Unidirectional.
  float* scratch = Reserve(Context().workspace().head, head_.scratch_size());
  const auto emit = [this, width, outputs, scratch](const RegressItem& item,
                                                    const Batch& batch,
                                                    const float* out, int b) {
    const int n = batch.size();
    float* dst = item.outputs.data() + batch.start * outputs;
    for (int t = 0; t < batch.valid[b]; ++t) {
      head_.Apply(out + (static_cast<size_t>(t) * n + b) * width,
                  dst + t * outputs, scratch);
      ApplyOutputActivation(config_.output_activation, dst + t * outputs,
                            static_cast<int>(outputs));
    }
  };
  // Never padded: a chunk's final state must be the one after its own last
  // step, so every chunk ends where a segment ends.
  return RunItems(items, /*pad=*/false, emit);
}

absl::Status DnnlEngine::Warmup(int steps, int max_batch) {
  if (steps < 1 || max_batch < 1 || max_batch > kMaxBatch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Warmup: steps must be >= 1 and max_batch in [1, ", kMaxBatch,
        "], got steps=", steps, " max_batch=", max_batch));
  }
  std::vector<int> step_shapes;
  if (config_.bidirectional) {
    // Exact lengths only: this one, in every batch bucket.
    step_shapes.push_back(steps);
  } else {
    // A run of `steps` is pieces of kMaxSegmentSteps and a remainder; the
    // remainder becomes a bucket, so it runs as one execution.
    const int rest = steps % kMaxSegmentSteps;
    const uint64_t buckets = step_buckets_.fetch_or(StepBucketBit(
                                 rest == 0 ? kMaxSegmentSteps : rest)) |
                             StepBucketBit(rest == 0 ? kMaxSegmentSteps : rest);
    for (int s = 1; s <= kMaxSegmentSteps; ++s) {
      if (buckets & StepBucketBit(s)) step_shapes.push_back(s);
    }
  }
  const int top = BatchBucket(max_batch);
  for (int s : step_shapes) {
    for (int rows = 1; rows <= top; rows = BatchBucket(rows + 1)) {
      RETURN_IF_ERROR(GetPlan(s, rows).status());
    }
  }
  return absl::OkStatus();
}

}  // namespace

void SetThreadsForThisThread(int threads) {
  omp_set_num_threads(threads < 1 ? 1 : threads);
}

absl::StatusOr<std::unique_ptr<Engine>> CreateDnnlEngine(
    const model::Model& model, const DnnlEngineOptions& options) {
  RETURN_IF_ERROR(model::ValidateModel(model));
  if (options.max_cached_plans < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_cached_plans must be >= 1, got ", options.max_cached_plans));
  }
  try {
    return std::make_unique<DnnlEngine>(model, options);
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("oneDNN could not prepare ",
                                            model.config.name, ": ", e.what()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("out of memory preparing ", model.config.name));
  }
}

}  // namespace rnnserve::engine
