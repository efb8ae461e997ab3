// The work a caller hands the runtime: a classification call, or one chunk
// of a streaming session. The caller owns the buffers the items point to and
// is told the outcome through Done().
#ifndef RNNSERVE_SERVER_RUNTIME_TASKS_H_
#define RNNSERVE_SERVER_RUNTIME_TASKS_H_

#include <algorithm>
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

  // Its sequences that have steps left to run.
  virtual int unfinished() const = 0;

  // Filled in by the runtime before Done, for the caller's metrics and logs.
  absl::Duration queue_wait;
  // The RPC the task serves, as the metrics label it: its queue wait is
  // recorded under it. Set by the caller; defaults to the queue's method.
  metrics::Method method;

 protected:
  explicit RuntimeTask(metrics::Method default_method)
      : method(default_method) {}
};

// Sequences to classify. The runtime may run a long task in slices (see
// batching::QueueOptions::slice_steps): all its sequences advance together,
// the state of each carried in the task between slices.
class ClassifyTask : public RuntimeTask {
 public:
  ClassifyTask() : RuntimeTask(metrics::Method::kClassify) {}
  int size() const override { return static_cast<int>(items.size()); }
  // Steps of all its sequences not run yet, and their input floats.
  batching::Cost cost() const override {
    batching::Cost cost;
    for (const engine::ClassifyItem& item : items) {
      if (item.steps <= done_steps_) continue;
      const int64_t left = item.steps - done_steps_;
      cost.steps += left;
      cost.values += left * static_cast<int64_t>(item.inputs.size()) /
                     std::max(1, item.steps);
    }
    return cost;
  }
  bool sliceable() const override { return sliceable_; }
  int unfinished() const override {
    int n = 0;
    for (const engine::ClassifyItem& item : items) {
      n += item.steps > done_steps_ ? 1 : 0;
    }
    return n;
  }
  std::vector<engine::ClassifyItem> items;

 private:
  friend class ModelRuntime;
  bool sliceable_ = false;
  int done_steps_ = 0;          // Steps every sequence has run.
  std::vector<float> carried_;  // Each sequence's state between slices.
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
  // The steps not run yet, and their input floats.
  batching::Cost cost() const override {
    const int64_t left = item.steps - done_steps_;
    return {left, left * static_cast<int64_t>(item.inputs.size()) /
                      std::max(1, item.steps)};
  }
  bool sliceable() const override { return sliceable_; }
  int unfinished() const override { return done_steps_ < item.steps ? 1 : 0; }
  engine::RegressItem item;
  // What to commit once the engine has written the item's outputs and
  // state_out (the spans point at them). A task without one is not
  // committed.
  std::optional<sessions::SessionCommit> commit;

 private:
  friend class ModelRuntime;
  // A long chunk runs in slices; each continues from state_out, and the
  // chunk is committed after its last.
  bool sliceable_ = false;
  int done_steps_ = 0;
};

}  // namespace rnnserve::runtime

#endif  // RNNSERVE_SERVER_RUNTIME_TASKS_H_
