#include "server/engine/dnnl_engine.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "dnnl.hpp"
#include "server/common/status_macros.h"
#include "server/engine/head.h"
#include "server/engine/lru_cache.h"
#include "server/engine/recurrent_plan.h"

namespace rnnserve::engine {
namespace {

using dnnl::memory;

// Buffers one thread reuses from call to call, so that steady traffic does
// not allocate. They only grow.
struct Workspace {
  std::vector<float> src;       // (steps, batch, input)
  std::vector<float> layer[2];  // Group outputs, (steps, batch, dirs * H)
  std::vector<float> state_in;  // (layers, dirs, batch, H)
  std::vector<float> cell_in;
  std::vector<float> state_out;
  std::vector<float> cell_out;
  std::vector<char> scratchpad;
};

float* Reserve(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// Sequences of one length that run as one batch. Null states mean zeros in,
// nothing out.
struct Batch {
  int steps = 0;
  std::vector<const float*> inputs;
  std::vector<const float*> state_in;
  std::vector<float*> state_out;
  int size() const { return static_cast<int>(inputs.size()); }
};

// Indices of items with equal step counts, in batches of at most
// `max_batch`; shortest first, and in call order within one length.
std::vector<std::vector<int>> GroupByLength(const std::vector<int>& steps,
                                            int max_batch) {
  std::vector<int> order(steps.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return steps[a] < steps[b]; });
  std::vector<std::vector<int>> groups;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i == 0 || steps[order[i]] != steps[order[i - 1]] ||
        static_cast<int>(groups.back().size()) == max_batch) {
      groups.emplace_back();
    }
    groups.back().push_back(order[i]);
  }
  return groups;
}

absl::Status SizeError(const char* rpc, size_t item, const char* field,
                       size_t got, size_t want) {
  return absl::InvalidArgumentError(absl::StrCat(rpc, " item ", item, ": ",
                                                 field, " has ", got,
                                                 " floats, expected ", want));
}

class DnnlEngine final : public Engine {
 public:
  DnnlEngine(const model::Model& model, const DnnlEngineOptions& options)
      : cpu_(dnnl::engine::kind::cpu, 0),
        config_(model.config),
        head_(model.head_weight, model.head_bias),
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

  absl::StatusOr<std::shared_ptr<const Plan>> GetPlan(int steps, int batch);
  // Runs `batch` and leaves the last group's output in the returned buffer,
  // (steps, batch, dirs * hidden).
  absl::StatusOr<const float*> Run(const Batch& batch, Workspace& ws);
  void GatherState(const Batch& batch, const LayerGroup& group, bool cell,
                   float* dst) const;
  void ScatterState(const Batch& batch, const LayerGroup& group, bool cell,
                    const float* src) const;

  const dnnl::engine cpu_;
  const model::ModelConfig config_;
  const LinearHead head_;
  PlanBuilder builder_;
  const std::vector<LayerGroup> groups_ = PlanLayerGroups(config_);
  LruCache<std::pair<int, int>, Plan> plans_;
  std::atomic<int64_t> plans_created_{0};
  std::atomic<int64_t> executions_{0};
};

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

void DnnlEngine::GatherState(const Batch& batch, const LayerGroup& group,
                             bool cell, float* dst) const {
  const size_t hidden = config_.hidden_size;
  const int dirs = config_.num_directions();
  const size_t offset =
      cell ? static_cast<size_t>(config_.num_layers) * dirs * hidden : 0;
  const int n = batch.size();
  for (int l = 0; l < group.num_layers; ++l) {
    for (int d = 0; d < dirs; ++d) {
      const size_t from =
          offset + ((group.first_layer + l) * dirs + d) * hidden;
      for (int b = 0; b < n; ++b) {
        float* to =
            dst + ((static_cast<size_t>(l) * dirs + d) * n + b) * hidden;
        const float* state = batch.state_in[b];
        if (state == nullptr) {
          std::fill(to, to + hidden, 0.0f);
        } else {
          std::memcpy(to, state + from, hidden * sizeof(float));
        }
      }
    }
  }
}

void DnnlEngine::ScatterState(const Batch& batch, const LayerGroup& group,
                              bool cell, const float* src) const {
  const size_t hidden = config_.hidden_size;
  const int dirs = config_.num_directions();
  const size_t offset =
      cell ? static_cast<size_t>(config_.num_layers) * dirs * hidden : 0;
  const int n = batch.size();
  for (int l = 0; l < group.num_layers; ++l) {
    for (int d = 0; d < dirs; ++d) {
      const size_t to = offset + ((group.first_layer + l) * dirs + d) * hidden;
      for (int b = 0; b < n; ++b) {
        if (batch.state_out[b] == nullptr) continue;
        const float* from =
            src + ((static_cast<size_t>(l) * dirs + d) * n + b) * hidden;
        std::memcpy(batch.state_out[b] + to, from, hidden * sizeof(float));
      }
    }
  }
}

absl::StatusOr<const float*> DnnlEngine::Run(const Batch& batch,
                                             Workspace& ws) {
  const int steps = batch.steps;
  const int n = batch.size();
  ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, GetPlan(steps, n));

  // Time-major input: step t of sequence b at (t * n + b).
  const size_t input = config_.input_size;
  float* src = Reserve(ws.src, static_cast<size_t>(steps) * n * input);
  for (int b = 0; b < n; ++b) {
    for (int t = 0; t < steps; ++t) {
      std::memcpy(src + (static_cast<size_t>(t) * n + b) * input,
                  batch.inputs[b] + t * input, input * sizeof(float));
    }
  }
  const bool lstm = config_.cell == model::Cell::kLstm;
  const size_t layer_floats = static_cast<size_t>(steps) * n *
                              config_.num_directions() * config_.hidden_size;
  if (ws.scratchpad.size() < plan->scratchpad_bytes) {
    ws.scratchpad.resize(plan->scratchpad_bytes);
  }
  try {
    dnnl::stream stream(cpu_);
    const float* layer_in = src;
    float* layer_out = nullptr;
    for (size_t g = 0; g < plan->groups.size(); ++g) {
      const GroupPrimitive& p = plan->groups[g];
      const LayerGroup& group = groups_[g];
      const size_t state_floats = p.state.get_size() / sizeof(float);
      layer_out = Reserve(ws.layer[g % 2], layer_floats);
      float* state_in = Reserve(ws.state_in, state_floats);
      float* state_out = Reserve(ws.state_out, state_floats);
      GatherState(batch, group, false, state_in);
      std::unordered_map<int, memory> args = {
          {DNNL_ARG_SRC_LAYER,
           memory(p.src_layer, cpu_, const_cast<float*>(layer_in))},
          {DNNL_ARG_SRC_ITER, memory(p.state, cpu_, state_in)},
          {DNNL_ARG_WEIGHTS_LAYER, p.weights_layer},
          {DNNL_ARG_WEIGHTS_ITER, p.weights_iter},
          {DNNL_ARG_BIAS, p.bias},
          {DNNL_ARG_DST_LAYER, memory(p.dst_layer, cpu_, layer_out)},
          {DNNL_ARG_DST_ITER, memory(p.state, cpu_, state_out)},
          {DNNL_ARG_SCRATCHPAD,
           memory(p.scratchpad, cpu_, ws.scratchpad.data())},
      };
      float* cell_out = nullptr;
      if (lstm) {
        float* cell_in = Reserve(ws.cell_in, state_floats);
        cell_out = Reserve(ws.cell_out, state_floats);
        GatherState(batch, group, true, cell_in);
        args.emplace(DNNL_ARG_SRC_ITER_C, memory(p.state, cpu_, cell_in));
        args.emplace(DNNL_ARG_DST_ITER_C, memory(p.state, cpu_, cell_out));
      }
      p.primitive.execute(stream, args);
      stream.wait();
      ++executions_;
      ScatterState(batch, group, false, state_out);
      if (lstm) ScatterState(batch, group, true, cell_out);
      layer_in = layer_out;
    }
    return layer_out;
  } catch (const dnnl::error& e) {
    return absl::InternalError(
        absl::StrCat("oneDNN failed to run ", config_.name, ": ", e.what()));
  }
}

absl::Status DnnlEngine::Classify(std::span<const ClassifyItem> items) {
  const size_t input = config_.input_size;
  const size_t outputs = config_.output_size;
  std::vector<int> steps(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const ClassifyItem& item = items[i];
    if (item.steps < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Classify item ", i, ": steps must be >= 1, got ", item.steps));
    }
    const size_t want = static_cast<size_t>(item.steps) * input;
    if (item.inputs.size() != want) {
      return SizeError("Classify", i, "inputs", item.inputs.size(), want);
    }
    if (item.logits.size() != outputs) {
      return SizeError("Classify", i, "logits", item.logits.size(), outputs);
    }
    if (!item.probabilities.empty() && item.probabilities.size() != outputs) {
      return SizeError("Classify", i, "probabilities",
                       item.probabilities.size(), outputs);
    }
    steps[i] = item.steps;
  }
  thread_local Workspace ws;
  const size_t width =
      static_cast<size_t>(config_.num_directions()) * config_.hidden_size;
  for (const std::vector<int>& group : GroupByLength(steps, kMaxBatch)) {
    Batch batch;
    batch.steps = steps[group.front()];
    for (int i : group) {
      batch.inputs.push_back(items[i].inputs.data());
      batch.state_in.push_back(nullptr);
      batch.state_out.push_back(nullptr);
    }
    ASSIGN_OR_RETURN(const float* out, Run(batch, ws));
    // The output at the last step: for a bidirectional model, the forward
    // direction's last step beside the reverse direction's first, as
    // PyTorch's output[:, -1, :].
    const float* last =
        out + static_cast<size_t>(batch.steps - 1) * batch.size() * width;
    for (int b = 0; b < batch.size(); ++b) {
      const ClassifyItem& item = items[group[b]];
      head_.Apply(last + b * width, item.logits.data());
      if (!item.probabilities.empty()) {
        Softmax(item.logits, item.probabilities);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status DnnlEngine::Regress(std::span<const RegressItem> items) {
  if (config_.bidirectional) {
    return absl::FailedPreconditionError(absl::StrCat(
        "model ", config_.name,
        " is bidirectional: it needs whole sequences, not chunks"));
  }
  const size_t input = config_.input_size;
  const size_t outputs = config_.output_size;
  const size_t state = config_.state_size();
  std::vector<int> steps(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const RegressItem& item = items[i];
    if (item.steps < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Regress item ", i, ": steps must be >= 1, got ", item.steps));
    }
    const size_t want = static_cast<size_t>(item.steps) * input;
    if (item.inputs.size() != want) {
      return SizeError("Regress", i, "inputs", item.inputs.size(), want);
    }
    if (!item.state_in.empty() && item.state_in.size() != state) {
      return SizeError("Regress", i, "state_in", item.state_in.size(), state);
    }
    if (item.state_out.size() != state) {
      return SizeError("Regress", i, "state_out", item.state_out.size(), state);
    }
    const size_t want_out = static_cast<size_t>(item.steps) * outputs;
    if (item.outputs.size() != want_out) {
      return SizeError("Regress", i, "outputs", item.outputs.size(), want_out);
    }
    steps[i] = item.steps;
  }
  thread_local Workspace ws;
  const size_t width = config_.hidden_size;  // Unidirectional.
  for (const std::vector<int>& group : GroupByLength(steps, kMaxBatch)) {
    Batch batch;
    batch.steps = steps[group.front()];
    for (int i : group) {
      batch.inputs.push_back(items[i].inputs.data());
      batch.state_in.push_back(
          items[i].state_in.empty() ? nullptr : items[i].state_in.data());
      batch.state_out.push_back(items[i].state_out.data());
    }
    ASSIGN_OR_RETURN(const float* out, Run(batch, ws));
    const int n = batch.size();
    for (int b = 0; b < n; ++b) {
      float* dst = items[group[b]].outputs.data();
      for (int t = 0; t < batch.steps; ++t) {
        head_.Apply(out + (static_cast<size_t>(t) * n + b) * width,
                    dst + t * outputs);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status DnnlEngine::Warmup(int steps, int batch) {
  if (steps < 1 || batch < 1 || batch > kMaxBatch) {
    return absl::InvalidArgumentError(
        absl::StrCat("Warmup: steps must be >= 1 and batch in [1, ", kMaxBatch,
                     "], got steps=", steps, " batch=", batch));
  }
  return GetPlan(steps, batch).status();
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
