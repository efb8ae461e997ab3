// One model at run time: its engine behind two batching queues, one for
// classification calls and one for streaming chunks.
#ifndef RNNSERVE_SERVER_RUNTIME_MODEL_RUNTIME_H_
#define RNNSERVE_SERVER_RUNTIME_MODEL_RUNTIME_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
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

  // Tests only: runs on the compute thread for each chunk the engine has
  // run, before the runtime decides whether to commit it. Set before any
  // call.
  void SetChunkComputedHook(std::function<void(const RuntimeTask&)> hook) {
    chunk_computed_hook_ = std::move(hook);
  }

 private:
  void RunClassify(batching::Batch& batch);
  void RunRegress(batching::Batch& batch);
  // Commits the chunks of a batch the engine ran whose callers still wait,
  // in one call of the store; returns each task's outcome.
  std::vector<absl::Status> CommitChunks(batching::Batch& batch);
  absl::Status WrongTask(const char* call) const;
  void RecordQueueDepth(metrics::Method method, const batching::Queue& queue);

  const std::unique_ptr<engine::Engine> engine_;
  const batching::QueueOptions queue_;
  const Clock& clock_;
  metrics::ModelMetrics* const metrics_;
  sessions::SessionStore* const sessions_;
  std::function<void(const RuntimeTask&)> chunk_computed_hook_;
  batching::Queue* classify_queue_ = nullptr;  // Classification models.
  batching::Queue* regress_queue_ = nullptr;   // Regression models.
};

}  // namespace rnnserve::runtime

#endif  // RNNSERVE_SERVER_RUNTIME_MODEL_RUNTIME_H_
