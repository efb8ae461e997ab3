#include "server/runtime/model_runtime.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"

namespace rnnserve::runtime {
namespace {

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
  if (metrics_ != nullptr)
    metrics_->SetQueueDepth(method, queue.queued_cost().steps);
}

absl::Status ModelRuntime::Classify(std::unique_ptr<ClassifyTask>& task) {
  if (classify_queue_ == nullptr) return WrongTask("classification");
  absl::Status status = ScheduleOn(*classify_queue_, task);
  RecordQueueDepth(Method::kClassify, *classify_queue_);
  return status;
}

absl::Status ModelRuntime::Regress(std::unique_ptr<RegressTask>& task) {
  if (regress_queue_ == nullptr) return WrongTask("regression");
  absl::Status status = ScheduleOn(*regress_queue_, task);
  RecordQueueDepth(Method::kRegress, *regress_queue_);
  return status;
}

void ModelRuntime::RunClassify(batching::Batch& batch) {
  const absl::Time start = clock_.Now();
  RecordQueueDepth(Method::kClassify, *classify_queue_);
  std::vector<engine::ClassifyItem> items;
  int64_t steps = 0;
  for (auto& task : batch) {
    auto& t = static_cast<ClassifyTask&>(*task);
    t.queue_wait = start - t.enqueued;
    for (const engine::ClassifyItem& item : t.items) {
      items.push_back(item);
      steps += item.steps;
    }
  }
  const absl::Status status = engine_->Classify(items);
  if (metrics_ != nullptr) {
    metrics_->BatchRan(Method::kClassify, static_cast<int>(items.size()), steps,
                       clock_.Now() - start);
    for (auto& task : batch) {
      metrics_->QueueWait(Method::kClassify,
                          static_cast<RuntimeTask&>(*task).queue_wait);
    }
  }
  Complete(batch, status);
}

void ModelRuntime::RunRegress(batching::Batch& batch) {
  const absl::Time start = clock_.Now();
  RecordQueueDepth(Method::kRegress, *regress_queue_);
  std::vector<engine::RegressItem> items;
  int64_t steps = 0;
  for (auto& task : batch) {
    auto& t = static_cast<RegressTask&>(*task);
    t.queue_wait = start - t.enqueued;
    items.push_back(t.item);
    steps += t.item.steps;
  }
  const absl::Status status = engine_->Regress(items);
  if (metrics_ != nullptr) {
    // A batch of unary chunks only (RegressChunk, ModelInfer) counts as
    // RegressChunk; one with any stream chunk as Regress.
    Method method = Method::kRegressChunk;
    for (auto& task : batch) {
      const auto& t = static_cast<RuntimeTask&>(*task);
      metrics_->QueueWait(t.method, t.queue_wait);
      if (t.method == Method::kRegress) method = Method::kRegress;
    }
    metrics_->BatchRan(method, static_cast<int>(items.size()), steps,
                       clock_.Now() - start);
  }
  if (!status.ok()) {
    Complete(batch, status);
    return;
  }
  // Taken out of the batch: from here on the runtime answers them.
  Chunks chunks;
  chunks.reserve(batch.size());
  for (auto& task : batch) {
    chunks.emplace_back(static_cast<RegressTask*>(task.release()));
  }
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

ModelRuntime::~ModelRuntime() { StopCommitting(); }

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
  std::vector<float> input(config.input_size, 0.0f);
  std::vector<float> output(config.output_size);
  if (config.task == model::Task::kClassification) {
    engine::ClassifyItem item{1, input, output, {}};
    return engine_->Classify({&item, 1});
  }
  std::vector<float> state(config.state_size());
  engine::RegressItem item{1, input, {}, state, output};
  return engine_->Regress({&item, 1});
}

}  // namespace rnnserve::runtime
