// One model at run time: its engine behind two batching queues, one for
// classification calls and one for streaming chunks.
#ifndef RNNSERVE_SERVER_RUNTIME_MODEL_RUNTIME_H_
#define RNNSERVE_SERVER_RUNTIME_MODEL_RUNTIME_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/batching/scheduler.h"
#include "server/common/clock.h"
#include "server/engine/engine.h"
#include "server/metrics/metrics.h"
#include "server/runtime/tasks.h"

namespace rnnserve::runtime {

// Accepts tasks, runs them in batches on the scheduler's compute threads
// and completes them there. Thread-safe.
class ModelRuntime {
 public:
  // Adds the model's queues to `scheduler`. `scheduler`, `clock`,
  // `metrics` (may be null) and `sessions` (may be null for a runtime whose
  // chunks carry no commit) must outlive the runtime.
  ModelRuntime(std::unique_ptr<engine::Engine> engine,
               const batching::QueueOptions& queue,
               batching::Scheduler& scheduler, const Clock& clock,
               metrics::ModelMetrics* metrics,
               sessions::SessionStore* sessions = nullptr);

  // Removes the model's queues from the scheduler (waiting for their
  // running batches; anything still queued is refused with UNAVAILABLE),
  // commits what is still to commit, then stops the commit thread. Not
  // from a compute thread.
  ~ModelRuntime();

  const model::ModelConfig& config() const { return engine_->config(); }
  const batching::QueueOptions& queue_options() const { return queue_; }
  engine::Engine& engine() { return *engine_; }

  // Queue a task: OK and the task is taken, or the task stays with the
  // caller and the status says why (RESOURCE_EXHAUSTED: a bound of the
  // queue (items, steps or input values) is reached;
  // UNAVAILABLE: shutting down; FAILED_PRECONDITION: the model's task is
  // the other one).
  absl::Status Classify(std::unique_ptr<ClassifyTask>& task);
  absl::Status Regress(std::unique_ptr<RegressTask>& task);

  // Prepares every shape that batches of up to the queue's max_batch_size
  // need, with each of `steps` as a step bucket (Engine::Warmup), and runs
  // the model once, so that first calls are not slow.
  // Call it on a thread set up like the compute threads.
  absl::Status Warmup(const std::vector<int>& steps);

  // Commits and answers every chunk the engine has run, then stops the
  // thread that commits to a remote store. Call once the scheduler has
  // stopped; idempotent.
  void StopCommitting();

  // Tests only: runs on the compute thread for each chunk the engine has
  // run, before the runtime decides whether to commit it. Set before any
  // call.
  void SetChunkComputedHook(std::function<void(const RuntimeTask&)> hook) {
    chunk_computed_hook_ = std::move(hook);
  }

 private:
  // Steps each sequence of `batch` runs now: all of them for a batch of
  // the queue's short lane, else one slice (the queue's slice_steps shared
  // by the batch's unfinished sequences).
  int SliceSteps(const batching::Batch& batch) const;
  void RunClassify(batching::Batch& batch);
  // Adds the next `slice` steps of `task`'s unfinished sequences to
  // `items`; returns their steps.
  int64_t AddClassifySlice(ClassifyTask& task, int slice,
                           std::vector<engine::ClassifyItem>& items) const;
  using Chunks = std::vector<std::unique_ptr<RegressTask>>;
  void RunRegress(batching::Batch& batch);
  // Commits the chunks of a batch the engine ran whose callers still wait,
  // in one call of the store; returns each task's outcome.
  std::vector<absl::Status> CommitChunks(Chunks& chunks);
  // Commits, then answers every chunk.
  void CommitAndComplete(Chunks& chunks);
  // The commit thread: every batch waiting, in one commit, in the order
  // they ran.
  void CommitLoop();
  bool HasCommitWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(commit_mu_) {
    return !to_commit_.empty() || stop_committing_;
  }
  absl::Status WrongTask(const char* call) const;
  void RecordQueueDepth(metrics::Method method, const batching::Queue& queue);

  const std::unique_ptr<engine::Engine> engine_;
  const batching::QueueOptions queue_;
  batching::Scheduler& scheduler_;
  const Clock& clock_;
  metrics::ModelMetrics* const metrics_;
  sessions::SessionStore* const sessions_;
  std::function<void(const RuntimeTask&)> chunk_computed_hook_;
  mutable absl::Mutex commit_mu_;
  std::deque<Chunks> to_commit_ ABSL_GUARDED_BY(commit_mu_);
  bool stop_committing_ ABSL_GUARDED_BY(commit_mu_) = false;
  // Runs CommitLoop with a remote store; not started otherwise.
  std::thread commit_thread_;
  batching::Queue* classify_queue_ = nullptr;  // Classification models.
  batching::Queue* regress_queue_ = nullptr;   // Regression models.
};

}  // namespace rnnserve::runtime

#endif  // RNNSERVE_SERVER_RUNTIME_MODEL_RUNTIME_H_
