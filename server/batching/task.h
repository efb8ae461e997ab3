// What the batch scheduler schedules: a task of one or more items.
#ifndef RNNSERVE_SERVER_BATCHING_TASK_H_
#define RNNSERVE_SERVER_BATCHING_TASK_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace rnnserve::batching {

// What a task costs to hold and to run, for admission: a queue bounds the
// sum over the tasks it holds. For recurrent models, `steps` is the time
// steps of all its sequences (compute) and `values` the input floats they
// carry (memory: values x 4 bytes).
struct Cost {
  int64_t steps = 0;
  int64_t values = 0;
};

// A unit of work that joins a batch whole. The scheduler only counts its
// items and cost, checks that its caller still waits, and hands it to the
// queue's processor; what an item is (a sequence, a chunk) is the
// processor's business.
//
// The scheduler calls size(), cost() and reads `deadline` once, when the
// task is scheduled, before it takes its lock; under its lock it calls
// nothing of the task but cancelled().
class Task {
 public:
  virtual ~Task() = default;

  // Items this task adds to a batch; at least 1.
  virtual int size() const = 0;

  // What the task costs; nothing by default, so that only its items count.
  virtual Cost cost() const { return {}; }

  // Whether the caller has given up; such a task is dropped before compute.
  // Called under the scheduler's lock, which every queue and compute thread
  // shares: it must be cheap and never block (e.g. read an atomic flag set
  // when the call is cancelled), and must stay true once it returned true.
  virtual bool cancelled() const { return false; }

  // Whether the processor may run the task in slices: a part of it, then
  // back to its queue (Queue::Continue) for the rest, so that other calls
  // run between the parts. When it is, and it costs more steps than its
  // queue's slice_steps, the task waits in the queue's long lane (see
  // QueueOptions). Its cost() is then what is left to run.
  virtual bool sliceable() const { return false; }

  // Called, instead of processing, when the task is dropped: cancelled
  // (CANCELLED), past its deadline (DEADLINE_EXCEEDED), never run because
  // the scheduler stopped (UNAVAILABLE), or left unanswered by a processor
  // that failed (RESOURCE_EXHAUSTED when out of memory, else INTERNAL).
  // Called at most once, never after the processor completed the task, and
  // not under the scheduler's lock.
  virtual void Drop(absl::Status why) = 0;

  // When the caller stops waiting, on the scheduler clock's base (monotonic
  // in the server); set before scheduling.
  absl::Time deadline = absl::InfiniteFuture();
  // When the queue accepted the task, on the same base; set by the
  // scheduler before the task reaches the processor.
  absl::Time enqueued;
};

// Tasks closed into one batch, in queue order.
using Batch = std::vector<std::unique_ptr<Task>>;

// Processes a batch on a compute thread. It completes each task after
// moving it out of `batch` (leaving null), so that the scheduler knows
// which are answered: tasks still in `batch` when the processor returns or
// throws are dropped by the scheduler with an error. The scheduler catches
// what it throws; the thread goes on with the next batch.
using Processor = std::function<void(Batch& batch)>;

}  // namespace rnnserve::batching

#endif  // RNNSERVE_SERVER_BATCHING_TASK_H_
