#include "server/runtime/model_runtime.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"

namespace rnnserve::runtime {
namespace {

// Steps [from, from + n) of a per-step span `width` wide; empty stays empty
// (an item has float inputs or token ids, not both).
template <typename T>
std::span<const T> StepsOf(std::span<const T> whole, int from, int n,
                           size_t width) {
  if (whole.empty()) return whole;
  return whole.subspan(from * width, n * width);
}

using metrics::Method;

// Schedules a task of a derived type; gives it back when refused.
template <typename T>
absl::Status ScheduleOn(batching::Queue& queue, std::unique_ptr<T>& task) {
  std::unique_ptr<batching::Task> base(std::move(task));
  absl::Status status = queue.Schedule(base);
  if (!status.ok()) task.reset(static_cast<T*>(base.release()));
  return status;
}

// Answers every task of the batch, each moved out first: should an answer
// throw, the scheduler answers only the tasks not yet answered.
void Complete(batching::Batch& batch, const absl::Status& status) {
  for (auto& task : batch) {
    std::unique_ptr<batching::Task> taken = std::move(task);
    static_cast<RuntimeTask&>(*taken).Done(status);
  }
}

}  // namespace

ModelRuntime::ModelRuntime(std::unique_ptr<engine::Engine> engine,
                           const batching::QueueOptions& queue,
                           batching::Scheduler& scheduler, const Clock& clock,
                           metrics::ModelMetrics* metrics,
                           sessions::SessionStore* sessions)
    : engine_(std::move(engine)),
      queue_(queue),
      scheduler_(scheduler),
      clock_(clock),
      metrics_(metrics),
      sessions_(sessions) {
  // A store across the network is committed to on a thread of its own, so
  // that the compute thread runs the next batch while the store answers.
  if (sessions_ != nullptr && sessions_->remote() &&
      engine_->config().task == model::Task::kRegression) {
    commit_thread_ = std::thread([this] { CommitLoop(); });
  }
  // Only the queue of the model's task: the other call is refused.
  const std::string& name = engine_->config().name;
  if (engine_->config().task == model::Task::kClassification) {
    classify_queue_ = scheduler.AddQueue(
        absl::StrCat(name, "/Classify"), queue,
        [this](batching::Batch& batch) { RunClassify(batch); });
  } else {
    regress_queue_ = scheduler.AddQueue(
        absl::StrCat(name, "/Regress"), queue,
        [this](batching::Batch& batch) { RunRegress(batch); });
  }
  if (metrics_ != nullptr) {
    metrics_->SetQueueCapacity(
        classify_queue_ != nullptr ? Method::kClassify : Method::kRegress,
        queue.max_queued_steps);
  }
}

absl::Status ModelRuntime::WrongTask(const char* call) const {
  return absl::FailedPreconditionError(
      absl::StrCat("model \"", config().name, "\" is a ",
                   AbslView(model::TaskName(config().task)),
                   " model; it does not serve ", call));
}

void ModelRuntime::RecordQueueDepth(Method method,
                                    const batching::Queue& queue) {
  if (metrics_ == nullptr) return;
  // This version's own series. Racing updates may land out of order; the
  // next one (each schedule and each batch) corrects the gauge.
  metrics_->SetQueueDepth(method, queue.queued_cost().steps);
}

absl::Status ModelRuntime::Classify(std::unique_ptr<ClassifyTask>& task) {
  if (classify_queue_ == nullptr) return WrongTask("classification");
  // A bidirectional model needs each sequence whole.
  task->sliceable_ = !config().bidirectional;
  absl::Status status = ScheduleOn(*classify_queue_, task);
  RecordQueueDepth(Method::kClassify, *classify_queue_);
  return status;
}

absl::Status ModelRuntime::Regress(std::unique_ptr<RegressTask>& task) {
  if (regress_queue_ == nullptr) return WrongTask("regression");
  task->sliceable_ = true;
  absl::Status status = ScheduleOn(*regress_queue_, task);
  RecordQueueDepth(Method::kRegress, *regress_queue_);
  return status;
}

int ModelRuntime::SliceSteps(const batching::Batch& batch) const {
  constexpr int kWhole = std::numeric_limits<int>::max();
  const int64_t budget = queue_.slice_steps;
  if (budget <= 0) return kWhole;
  // A batch comes from one lane: the long one holds sliceable tasks that
  // cost more than a slice.
  const batching::Task& first = *batch.front();
  if (!first.sliceable() || first.cost().steps <= budget) return kWhole;
  int64_t rows = 0;
  for (const auto& task : batch) {
    rows += static_cast<const RuntimeTask&>(*task).unfinished();
  }
  const int64_t each =
      std::max<int64_t>(1, budget / std::max<int64_t>(1, rows));
  // Whole step buckets: multiples of 64, or a power of two below it, so
  // that a slice is as few executions as can be.
  if (each >= 64)
    return static_cast<int>(std::min<int64_t>(each - each % 64, kWhole));
  int pow2 = 1;
  while (pow2 * 2 <= each) pow2 *= 2;
  return pow2;
}

int64_t ModelRuntime::AddClassifySlice(
    ClassifyTask& task, int slice,
    std::vector<engine::ClassifyItem>& items) const {
  const size_t input = config().input_size;
  const size_t state = config().classify_state_size();
  const int done = task.done_steps_;
  int64_t steps = 0;
  for (size_t i = 0; i < task.items.size(); ++i) {
    const engine::ClassifyItem& whole = task.items[i];
    if (whole.steps <= done) continue;
    const int n = std::min(whole.steps - done, slice);
    engine::ClassifyItem part{n, StepsOf(whole.inputs, done, n, input), {}, {}};
    part.tokens = StepsOf(whole.tokens, done, n, 1);
    if (whole.steps - done > n && task.carried_.empty()) {
      task.carried_.resize(task.items.size() * state);
    }
    const std::span<float> carried =
        task.carried_.empty()
            ? std::span<float>()
            : std::span<float>(task.carried_).subspan(i * state, state);
    if (done > 0) part.state_in = carried;
    if (whole.steps - done > n) {
      part.state_out = carried;
    } else {
      part.logits = whole.logits;
      part.probabilities = whole.probabilities;
    }
    items.push_back(part);
    steps += n;
  }
  return steps;
}

void ModelRuntime::RunClassify(batching::Batch& batch) {
  const absl::Time start = clock_.Now();
  RecordQueueDepth(Method::kClassify, *classify_queue_);
  const int slice = SliceSteps(batch);
  std::vector<engine::ClassifyItem> items;
  int64_t steps = 0;
  for (auto& task : batch) {
    auto& t = static_cast<ClassifyTask&>(*task);
    // The wait before its first slice; later ones are part of its run.
    if (t.done_steps_ == 0) {
      t.queue_wait = start - t.enqueued;
      if (metrics_ != nullptr)
        metrics_->QueueWait(Method::kClassify, t.queue_wait);
    }
    steps += AddClassifySlice(t, slice, items);
  }
  const absl::Status status = engine_->Classify(items);
  if (metrics_ != nullptr) {
    metrics_->BatchRan(Method::kClassify, static_cast<int>(items.size()), steps,
                       clock_.Now() - start);
  }
  if (!status.ok()) {
    Complete(batch, status);
    return;
  }
  for (auto& task : batch) {
    auto& t = static_cast<ClassifyTask&>(*task);
    // A whole run (slice at its largest) must not overflow the count.
    t.done_steps_ = static_cast<int>(std::min<int64_t>(
        int64_t{t.done_steps_} + slice, std::numeric_limits<int>::max()));
    std::unique_ptr<batching::Task> taken = std::move(task);
    if (t.unfinished() == 0) {
      static_cast<RuntimeTask&>(*taken).Done(absl::OkStatus());
    } else {
      classify_queue_->Continue(std::move(taken));
    }
  }
}

void ModelRuntime::RunRegress(batching::Batch& batch) {
  const absl::Time start = clock_.Now();
  RecordQueueDepth(Method::kRegress, *regress_queue_);
  const int slice = SliceSteps(batch);
  const size_t input = config().input_size;
  const size_t outputs = config().output_size;
  std::vector<engine::RegressItem> items;
  int64_t steps = 0;
  for (auto& task : batch) {
    auto& t = static_cast<RegressTask&>(*task);
    const int done = t.done_steps_;
    if (done == 0) t.queue_wait = start - t.enqueued;
    // Each slice continues from the state the one before it left.
    const int n = std::min(t.item.steps - done, slice);
    items.push_back({n, StepsOf(t.item.inputs, done, n, input),
                     done == 0 ? t.item.state_in : t.item.state_out,
                     t.item.state_out,
                     t.item.outputs.subspan(done * outputs, n * outputs),
                     StepsOf(t.item.tokens, done, n, 1)});
    steps += n;
  }
  const absl::Status status = engine_->Regress(items);
  if (metrics_ != nullptr) {
    // A batch of unary chunks only (RegressChunk, ModelInfer) counts as
    // RegressChunk; one with any stream chunk as Regress.
    Method method = Method::kRegressChunk;
    for (auto& task : batch) {
      const auto& t = static_cast<RegressTask&>(*task);
      if (t.done_steps_ == 0) metrics_->QueueWait(t.method, t.queue_wait);
      if (t.method == Method::kRegress) method = Method::kRegress;
    }
    metrics_->BatchRan(method, static_cast<int>(items.size()), steps,
                       clock_.Now() - start);
  }
  if (!status.ok()) {
    Complete(batch, status);
    return;
  }
  // Taken out of the batch: from here on the runtime answers them, or
  // hands back those with steps left.
  Chunks chunks;
  chunks.reserve(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    auto* t = static_cast<RegressTask*>(batch[i].get());
    t->done_steps_ += items[i].steps;
    if (t->done_steps_ < t->item.steps) {
      regress_queue_->Continue(std::move(batch[i]));
    } else {
      chunks.emplace_back(static_cast<RegressTask*>(batch[i].release()));
    }
  }
  if (chunks.empty()) return;
  if (!commit_thread_.joinable()) {
    CommitAndComplete(chunks);
    return;
  }
  absl::MutexLock lock(&commit_mu_);
  to_commit_.push_back(std::move(chunks));
}

void ModelRuntime::CommitLoop() {
  while (true) {
    Chunks chunks;
    {
      absl::MutexLock lock(&commit_mu_);
      commit_mu_.Await(absl::Condition(this, &ModelRuntime::HasCommitWork));
      // Whatever is there is committed before the thread ends.
      if (to_commit_.empty()) return;
      // Every batch that ran while the last commit was under way goes in
      // one round trip: the commits batch up as the chunks did.
      for (Chunks& batch : to_commit_) {
        for (auto& task : batch) chunks.push_back(std::move(task));
      }
      to_commit_.clear();
    }
    CommitAndComplete(chunks);
  }
}

void ModelRuntime::StopCommitting() {
  {
    absl::MutexLock lock(&commit_mu_);
    stop_committing_ = true;
  }
  if (commit_thread_.joinable()) commit_thread_.join();
}

ModelRuntime::~ModelRuntime() {
  const std::string why =
      absl::StrCat("version ", config().version, " of model ", config().name,
                   " was unloaded; call again");
  for (batching::Queue* queue : {classify_queue_, regress_queue_}) {
    if (queue != nullptr) scheduler_.RemoveQueue(queue, why);
  }
  StopCommitting();
}

void ModelRuntime::CommitAndComplete(Chunks& chunks) {
  const std::vector<absl::Status> outcomes = CommitChunks(chunks);
  for (size_t i = 0; i < chunks.size(); ++i) {
    std::unique_ptr<RegressTask> task = std::move(chunks[i]);
    task->Done(outcomes[i]);
  }
}

std::vector<absl::Status> ModelRuntime::CommitChunks(Chunks& chunks) {
  std::vector<absl::Status> outcomes(chunks.size());
  std::vector<sessions::SessionCommit> commits;
  std::vector<size_t> where;
  for (size_t i = 0; i < chunks.size(); ++i) {
    RegressTask& t = *chunks[i];
    if (!t.commit.has_value()) continue;
    if (chunk_computed_hook_) chunk_computed_hook_(t);
    // A chunk nobody waits for is not applied: its caller may already be
    // retrying it elsewhere. The deadline first, as gRPC reports it.
    if (clock_.Now() >= t.deadline) {
      outcomes[i] = absl::DeadlineExceededError(
          "the call's deadline passed before the chunk was applied");
    } else if (t.cancelled()) {
      outcomes[i] = absl::CancelledError(
          "the client cancelled the call; the chunk was not applied");
    } else {
      commits.push_back(std::move(*t.commit));
      where.push_back(i);
    }
  }
  if (commits.empty()) return outcomes;
  if (sessions_ == nullptr) {
    for (size_t i : where) {
      outcomes[i] = absl::InternalError("no session store to commit to");
    }
    return outcomes;
  }
  std::vector<absl::Status> committed = sessions_->CommitAll(commits);
  for (size_t j = 0; j < where.size(); ++j) {
    outcomes[where[j]] = std::move(committed[j]);
  }
  return outcomes;
}

absl::Status ModelRuntime::Warmup(const std::vector<int>& steps) {
  for (int s : steps) {
    RETURN_IF_ERROR(engine_->Warmup(s, queue_.max_batch_size));
  }
  // One real run, so that the first call does not pay for first touches.
  const model::ModelConfig& config = engine_->config();
  // An embedding model reads token id 0 instead of a row of zeros.
  std::vector<float> input(config.has_embedding() ? 0 : config.input_size,
                           0.0f);
  const int64_t token = 0;
  const std::span<const int64_t> tokens(&token, config.has_embedding() ? 1 : 0);
  std::vector<float> output(config.output_size);
  if (config.task == model::Task::kClassification) {
    engine::ClassifyItem item{1, input, output, {}};
    item.tokens = tokens;
    return engine_->Classify({&item, 1});
  }
  std::vector<float> state(config.state_size());
  engine::RegressItem item{1, input, {}, state, output, tokens};
  return engine_->Regress({&item, 1});
}

}  // namespace rnnserve::runtime
