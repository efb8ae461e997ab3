// Batching: per-model queues served by one pool of compute threads.
#ifndef RNNSERVE_SERVER_BATCHING_SCHEDULER_H_
#define RNNSERVE_SERVER_BATCHING_SCHEDULER_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/batching/task.h"
#include "server/common/clock.h"

namespace rnnserve::batching {

struct QueueOptions {
  // Most items in one batch. A task larger than this runs in a batch of its
  // own. Default 64.
  int max_batch_size = 64;
  // How long a queued task may wait for its batch to fill. 0 (the default)
  // runs whatever is queued as soon as a compute thread is free, so a lone
  // call is never delayed and batches grow while the threads are busy.
  absl::Duration max_queue_delay = absl::ZeroDuration();
  // Items that may wait; a task beyond it is refused at once with
  // RESOURCE_EXHAUSTED. Default 1024.
  int max_queued_items = 1024;
};

class Scheduler;

// One queue of the scheduler, e.g. one model's classification calls. Made by
// Scheduler::AddQueue and owned by it. Thread-safe.
class Queue {
 public:
  // Takes the task and returns OK; or leaves it with the caller and returns
  // RESOURCE_EXHAUSTED (the queue is full, even after dropping the tasks
  // whose callers gave up) or UNAVAILABLE (the scheduler is stopping).
  // Never blocks.
  absl::Status Schedule(std::unique_ptr<Task>& task);

  // Items waiting now.
  int queued_items() const;
  const std::string& name() const { return name_; }
  const QueueOptions& options() const { return options_; }

 private:
  friend class Scheduler;
  Queue(Scheduler& scheduler, std::string name, QueueOptions options,
        Processor processor);
  // Takes out the tasks whose callers gave up (cancelled or past their
  // deadline), for the caller to drop once the lock is released.
  std::vector<std::unique_ptr<Task>> RemoveDeadLocked(absl::Time now);

  Scheduler& scheduler_;
  const std::string name_;
  const QueueOptions options_;
  const Processor processor_;
  // Guarded by scheduler_.mu_.
  std::deque<std::unique_ptr<Task>> tasks_;
  int items_ = 0;
};

// Runs queued tasks in batches on a fixed pool of compute threads. A thread
// that becomes free takes the queue whose oldest task waited longest among
// those ready (full, or waited out max_queue_delay), closes a batch of up to
// max_batch_size items, drops the tasks whose callers gave up, and hands the
// rest to the queue's processor. Thread-safe.
class Scheduler {
 public:
  struct Options {
    int num_threads = 1;
    // Runs first on every compute thread, e.g. to set its thread count.
    std::function<void()> on_thread_start;
  };

  // `clock` must outlive the scheduler.
  Scheduler(Options options, const Clock& clock);
  // Stops, running what is queued.
  ~Scheduler();

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Adds a queue whose batches go to `processor`. The scheduler owns it.
  Queue* AddQueue(std::string name, QueueOptions options, Processor processor);

  void Start();
  // Refuses new tasks, runs every task already queued, then joins the
  // threads. Idempotent.
  void Stop();
  // Makes waiting threads look again, for a clock that jumps (tests).
  void Poke();

 private:
  friend class Queue;
  void Loop();
  // The ready queue to serve now, or null; `wake` gets the earliest time a
  // queue becomes ready by waiting.
  Queue* PickReady(absl::Time now, absl::Time& wake)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Batch TakeBatch(Queue& queue) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  const Clock& clock_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::vector<std::unique_ptr<Queue>> queues_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int queued_tasks_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace rnnserve::batching

#endif  // RNNSERVE_SERVER_BATCHING_SCHEDULER_H_
