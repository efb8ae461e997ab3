// The work a caller hands the runtime: a classification call, or one chunk
// of a streaming session. The caller owns the buffers the items point to and
// is told the outcome through Done().
#ifndef RNNSERVE_SERVER_RUNTIME_TASKS_H_
#define RNNSERVE_SERVER_RUNTIME_TASKS_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/batching/task.h"
#include "server/engine/engine.h"
#include "server/metrics/metrics.h"
#include "server/sessions/session_store.h"

namespace rnnserve::runtime {

// Both kinds of task end the same way.
class RuntimeTask : public batching::Task {
 public:
  // Called exactly once for a task the runtime accepted, never under the
  // scheduler's lock: on a compute thread, or, for a task whose caller gave
  // up, on the thread of a later call that found it dead while making room.
  // On OK the items' outputs are written. A task the runtime refuses stays
  // with the caller and is not called.
  virtual void Done(absl::Status status) = 0;

  void Drop(absl::Status why) final { Done(std::move(why)); }

  // Filled in by the runtime before Done, for the caller's metrics and logs.
  absl::Duration queue_wait;
  // The RPC the task serves, as the metrics label it: its queue wait is
  // recorded under it. Set by the caller; defaults to the queue's method.
  metrics::Method method;

 protected:
  explicit RuntimeTask(metrics::Method default_method)
      : method(default_method) {}
};

// Sequences to classify.
class ClassifyTask : public RuntimeTask {
 public:
  ClassifyTask() : RuntimeTask(metrics::Method::kClassify) {}
  int size() const override { return static_cast<int>(items.size()); }
  // Steps of all its sequences, and their input floats.
  batching::Cost cost() const override {
    batching::Cost cost;
    for (const engine::ClassifyItem& item : items) {
      cost.steps += item.steps;
      cost.values += static_cast<int64_t>(item.inputs.size());
    }
    return cost;
  }
  std::vector<engine::ClassifyItem> items;
};

// One chunk of one session. The caller holds the session for the task's
// life, so no two chunks of one session are ever queued at once. When the
// engine has run it, its result is committed to the session store (with
// the rest of its batch, in one round trip) before Done: OK means the chunk
// is applied; any other status means it is not, or, for UNAVAILABLE from
// the store, that nobody knows (a retry with expected_first_step finds out).
class RegressTask : public RuntimeTask {
 public:
  // Regress by default; RegressChunk sets its own method.
  RegressTask() : RuntimeTask(metrics::Method::kRegress) {}
  int size() const override { return 1; }
  batching::Cost cost() const override {
    return {item.steps, static_cast<int64_t>(item.inputs.size())};
  }
  engine::RegressItem item;
  // What to commit once the engine has written the item's outputs and
  // state_out (the spans point at them). A task without one is not
  // committed.
  std::optional<sessions::SessionCommit> commit;
};

}  // namespace rnnserve::runtime

#endif  // RNNSERVE_SERVER_RUNTIME_TASKS_H_
