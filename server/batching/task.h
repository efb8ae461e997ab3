// What the batch scheduler schedules: a task of one or more items.
#ifndef RNNSERVE_SERVER_BATCHING_TASK_H_
#define RNNSERVE_SERVER_BATCHING_TASK_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace rnnserve::batching {

// A unit of work that joins a batch whole. The scheduler only counts its
// items, checks that its caller still waits, and hands it to the queue's
// processor; what an item is (a sequence, a chunk) is the processor's
// business.
class Task {
 public:
  virtual ~Task() = default;

  // Items this task adds to a batch; at least 1.
  virtual int size() const = 0;

  // Whether the caller has given up; such a task is dropped before compute.
  virtual bool cancelled() const { return false; }

  // Called, instead of processing, when the task is dropped: cancelled
  // (CANCELLED), past its deadline (DEADLINE_EXCEEDED) or never run because
  // the scheduler stopped (UNAVAILABLE). Called once, on a compute thread.
  virtual void Drop(absl::Status why) = 0;

  // When the caller stops waiting; set before scheduling.
  absl::Time deadline = absl::InfiniteFuture();
  // When the queue accepted the task; set by the queue.
  absl::Time enqueued;
};

// Tasks closed into one batch, in queue order.
using Batch = std::vector<std::unique_ptr<Task>>;

// Processes a batch on a compute thread and completes every task in it.
using Processor = std::function<void(Batch batch)>;

}  // namespace rnnserve::batching

#endif  // RNNSERVE_SERVER_BATCHING_TASK_H_
