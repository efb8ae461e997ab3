// Batching: per-model queues served by one pool of compute threads.
#ifndef RNNSERVE_SERVER_BATCHING_SCHEDULER_H_
#define RNNSERVE_SERVER_BATCHING_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
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
  // Bounds on what may wait, summed over the queued tasks: items, and the
  // tasks' Cost (steps, values). A task that would pass any of them is
  // refused at once with RESOURCE_EXHAUSTED, unless the queue is empty: a
  // task larger than a bound still runs, alone. Values below 1 count as 1.
  // Defaults: 1024 items; 1,000,000 steps, about a second of compute for
  // one compute thread on the bundled fashion_lstm; 32M values (128 MiB of
  // inputs).
  int max_queued_items = 1024;
  int64_t max_queued_steps = 1'000'000;
  int64_t max_queued_values = 32'000'000;
  // Long work is cut into slices of about this many steps, summed over a
  // batch's items, so that short calls are answered between the slices.
  // A sliceable task (Task::sliceable) that costs more steps waits in the
  // queue's long lane, every other task in its short lane. A batch is
  // taken from one lane; when both lanes hold tasks, the lane that has run
  // fewer steps goes next (a long batch counts at most slice_steps, and a
  // lane that was empty starts level with the other, not with credit), so
  // a short call waits for at most one slice of long work, and each lane
  // gets at least half of the compute when both are busy. The processor
  // runs a long batch's tasks for slice_steps in all and hands back what is
  // left (Queue::Continue). 0 (the default) turns lanes and slices off.
  int64_t slice_steps = 0;
};

class Queue;

// A queued task with what the scheduler needs of it, read once before it
// was queued, so that nothing of the task is called under the lock but
// cancelled(). Internal to the scheduler.
struct QueueEntry {
  std::unique_ptr<Task> task;
  int size = 0;
  Cost cost;
  absl::Time deadline;
  absl::Time enqueued;
  bool long_lane = false;
};

// Runs queued tasks in batches on a fixed pool of compute threads. A thread
// that becomes free takes the queue whose oldest task waited longest among
// those ready (full, or waited out max_queue_delay), closes a batch of up to
// max_batch_size items from one of its lanes (see QueueOptions::slice_steps),
// drops the tasks whose callers gave up, and hands the rest to the queue's
// processor. What the processor throws fails the tasks
// it left unanswered; the thread goes on. Thread-safe.
class Scheduler {
 public:
  struct Options {
    int num_threads = 1;
    // Runs first on every compute thread, e.g. to set its thread count.
    std::function<void()> on_thread_start;
  };

  // `clock` must outlive the scheduler; deadlines and queue delays are
  // measured on it, so in production it should be monotonic (SteadyClock).
  Scheduler(Options options, const Clock& clock);
  // Stops, running what is queued.
  ~Scheduler();

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Adds a queue whose batches go to `processor`. The scheduler owns it.
  Queue* AddQueue(std::string name, QueueOptions options, Processor processor);

  // Removes `queue` (of this scheduler) and destroys it: it takes no new
  // task (Schedule answers UNAVAILABLE, naming `why`), the batches of it
  // that run finish first, and what is still queued then is dropped with
  // UNAVAILABLE (`why`). For a queue whose owner goes away while the
  // scheduler serves others, e.g. an unloaded model version. Not from a
  // compute thread (a processor): it waits for them.
  void RemoveQueue(Queue* queue, const std::string& why);

  // Starts the compute threads. Once, before Stop.
  void Start();
  // Refuses new tasks, runs every task already queued, then joins the
  // threads. Idempotent, and safe from several threads at once: each call
  // returns when all is stopped. Not from a compute thread (a processor).
  void Stop();
  // Makes waiting threads look again, for a clock that jumps (tests).
  void Poke();

 private:
  friend class Queue;
  // A batch closed under the lock, to run outside it.
  struct Closed {
    Queue* queue = nullptr;
    std::vector<QueueEntry> entries;
    absl::Time now;  // When it was closed: deadlines are judged at it.
  };
  void Loop();
  // Waits for a batch and closes it; false when the thread should end.
  bool WaitAndClose(Closed& closed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The ready queue to serve now, or null; `wake` gets the earliest time a
  // queue becomes ready by waiting.
  Queue* PickReady(absl::Time now, absl::Time& wake)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<QueueEntry> TakeBatch(Queue& queue)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The tasks queued in `queue`, taken out.
  std::vector<std::unique_ptr<Task>> TakeAll(Queue& queue)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the dead, runs the rest; never throws.
  void RunBatch(Closed closed) ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  const Clock& clock_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::vector<std::unique_ptr<Queue>> queues_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int queued_tasks_ ABSL_GUARDED_BY(mu_) = 0;
  // Held through Start and through all of Stop, joins included, so that a
  // second Stop waits for the first; taken before mu_, never inside it.
  absl::Mutex threads_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(threads_mu_);
};

// One queue of the scheduler, e.g. one model's classification calls. Made by
// Scheduler::AddQueue and owned by it. Thread-safe.
class Queue {
 public:
  // Takes the task and returns OK; or leaves it with the caller and returns
  // RESOURCE_EXHAUSTED (a bound is reached, even after dropping the tasks
  // whose callers gave up) or UNAVAILABLE (the scheduler is stopping).
  // Never blocks on compute.
  absl::Status Schedule(std::unique_ptr<Task>& task);

  // Takes back a task its processor ran part of, to run the rest in a later
  // batch: at the back of its lane, with no bound checked (the task was let
  // in already), even while the scheduler stops (Stop runs it to its end).
  // For the queue's processor, on its compute thread, only.
  void Continue(std::unique_ptr<Task> task);

  // Items, and their cost, waiting now.
  int queued_items() const;
  Cost queued_cost() const;
  const std::string& name() const { return name_; }
  const QueueOptions& options() const { return options_; }

 private:
  friend class Scheduler;
  using Entry = QueueEntry;
  // A task taken out because its caller gave up, with the reason decided
  // under the lock; it is dropped with exactly that reason.
  struct Dead {
    std::unique_ptr<Task> task;
    absl::Status why;
  };

  Queue(Scheduler& scheduler, std::string name, QueueOptions options,
        Processor processor);
  // Tells clang's analysis that scheduler_.mu_ is held, for the scheduler's
  // code that holds it as its own mu_ (the analysis cannot see they are the
  // same); also checks it at run time.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK(scheduler_.mu_);
  // Tasks of one kind, in the order they came.
  struct Lane {
    std::deque<Entry> entries;
    // Steps the lane's batches ran, counted when a batch is closed.
    int64_t served = 0;
  };

  // What the scheduler needs of `task`, read outside the lock.
  Entry MakeEntry(const Task& task) const;
  bool EmptyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(scheduler_.mu_) {
    return short_.entries.empty() && long_.entries.empty();
  }
  // When the task that waited longest came.
  absl::Time OldestLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(scheduler_.mu_);
  // The lane the next batch comes from; the queue must not be empty.
  Lane& NextLaneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(scheduler_.mu_);
  // OK if `entry` may join the queue now, else why not.
  absl::Status CheckRoomLocked(const Entry& entry) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(scheduler_.mu_);
  void PushLocked(Entry entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(scheduler_.mu_);
  Entry PopLocked(Lane& lane) ABSL_EXCLUSIVE_LOCKS_REQUIRED(scheduler_.mu_);
  // Takes out the tasks whose callers gave up (cancelled or past their
  // deadline at `now`), for the caller to drop once the lock is released.
  std::vector<Dead> RemoveDeadLocked(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(scheduler_.mu_);

  Scheduler& scheduler_;
  const std::string name_;
  const QueueOptions options_;
  const Processor processor_;
  Lane short_ ABSL_GUARDED_BY(scheduler_.mu_);
  Lane long_ ABSL_GUARDED_BY(scheduler_.mu_);
  int items_ ABSL_GUARDED_BY(scheduler_.mu_) = 0;
  Cost cost_ ABSL_GUARDED_BY(scheduler_.mu_);
  // Batches of this queue closed and not yet finished.
  int running_ ABSL_GUARDED_BY(scheduler_.mu_) = 0;
  // Set by RemoveQueue: the refusal of every later task.
  std::optional<std::string> removed_ ABSL_GUARDED_BY(scheduler_.mu_);
};

}  // namespace rnnserve::batching

#endif  // RNNSERVE_SERVER_BATCHING_SCHEDULER_H_
