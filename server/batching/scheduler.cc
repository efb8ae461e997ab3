#include "server/batching/scheduler.h"

#include <algorithm>
#include <exception>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/log.h"

namespace rnnserve::batching {
namespace {

// Why a task whose caller gave up will not run, or OK if it still waits.
// Decided once; the task is then dropped with exactly this status.
absl::Status WhyDead(const Task& task, absl::Time deadline, absl::Time now) {
  if (task.cancelled()) return absl::CancelledError("the call was cancelled");
  if (deadline <= now) {
    return absl::DeadlineExceededError(
        "the call's deadline passed while it was queued");
  }
  return absl::OkStatus();
}

// Drop, contained: a task that fails to answer must not take the compute
// thread (or a caller of Schedule) down with it.
void DropQuietly(Task& task, const absl::Status& why) {
  try {
    task.Drop(why);
  } catch (const std::exception& e) {
    Log("batching: a task threw while being answered with ", why.ToString(),
        ": ", e.what());
  } catch (...) {
    Log("batching: a task threw while being answered with ", why.ToString());
  }
}

// Refusal for a task that would take a bound past `limit`.
absl::Status Full(const std::string& queue, const char* what, int64_t queued,
                  int64_t adding, int64_t limit, const char* flag) {
  return absl::ResourceExhaustedError(
      absl::StrCat("queue ", queue, " is full: ", queued, " ", what,
                   " waiting, and this "
                   "call's ",
                   adding, " would pass its bound of ", limit, " ", what,
                   " (server flag --", flag, "); retry later"));
}

}  // namespace

Queue::Queue(Scheduler& scheduler, std::string name, QueueOptions options,
             Processor processor)
    : scheduler_(scheduler),
      name_(std::move(name)),
      options_(options),
      processor_(std::move(processor)) {}

void Queue::AssertHeld() const { scheduler_.mu_.AssertHeld(); }

Queue::Entry Queue::MakeEntry(const Task& task) const {
  Entry entry{nullptr, task.size(), task.cost(), task.deadline, {}, false};
  entry.long_lane = options_.slice_steps > 0 && task.sliceable() &&
                    entry.cost.steps > options_.slice_steps;
  return entry;
}

absl::Status Queue::Schedule(std::unique_ptr<Task>& task) {
  // Everything needed of the task, read before the lock.
  Entry entry = MakeEntry(*task);
  std::vector<Dead> dead;
  absl::Status status;
  {
    absl::MutexLock lock(&scheduler_.mu_);
    if (scheduler_.stopping_) {
      return absl::UnavailableError("the server is shutting down");
    }
    if (removed_.has_value()) return absl::UnavailableError(*removed_);
    const absl::Time now = scheduler_.clock_.Now();
    // Callers that gave up must not keep live ones out.
    if (!CheckRoomLocked(entry).ok()) dead = RemoveDeadLocked(now);
    status = CheckRoomLocked(entry);
    if (status.ok()) {
      entry.enqueued = now;
      entry.task = std::move(task);
      PushLocked(std::move(entry));
    }
  }
  for (Dead& d : dead) DropQuietly(*d.task, d.why);
  if (status.ok()) scheduler_.cv_.Signal();
  return status;
}

void Queue::Continue(std::unique_ptr<Task> task) {
  Entry entry = MakeEntry(*task);
  entry.task = std::move(task);
  {
    absl::MutexLock lock(&scheduler_.mu_);
    entry.enqueued = scheduler_.clock_.Now();
    PushLocked(std::move(entry));
  }
  scheduler_.cv_.Signal();
}

absl::Status Queue::CheckRoomLocked(const Entry& entry) const {
  // A task larger than a bound still gets in when the queue is empty;
  // otherwise it could never run.
  if (EmptyLocked()) return absl::OkStatus();
  if (items_ + entry.size > options_.max_queued_items) {
    return Full(name_, "items", items_, entry.size, options_.max_queued_items,
                "max-queued-items");
  }
  if (cost_.steps + entry.cost.steps > options_.max_queued_steps) {
    return Full(name_, "steps", cost_.steps, entry.cost.steps,
                options_.max_queued_steps, "max-queued-steps");
  }
  if (cost_.values + entry.cost.values > options_.max_queued_values) {
    return Full(name_, "values", cost_.values, entry.cost.values,
                options_.max_queued_values, "max-queued-values");
  }
  return absl::OkStatus();
}

void Queue::PushLocked(Entry entry) {
  items_ += entry.size;
  cost_.steps += entry.cost.steps;
  cost_.values += entry.cost.values;
  ++scheduler_.queued_tasks_;
  Lane& lane = entry.long_lane ? long_ : short_;
  Lane& other = entry.long_lane ? short_ : long_;
  // A lane that had nothing to run has no claim on the time it was idle.
  if (lane.entries.empty()) lane.served = std::max(lane.served, other.served);
  lane.entries.push_back(std::move(entry));
}

Queue::Entry Queue::PopLocked(Lane& lane) {
  Entry entry = std::move(lane.entries.front());
  lane.entries.pop_front();
  items_ -= entry.size;
  cost_.steps -= entry.cost.steps;
  cost_.values -= entry.cost.values;
  --scheduler_.queued_tasks_;
  return entry;
}

absl::Time Queue::OldestLocked() const {
  absl::Time oldest = absl::InfiniteFuture();
  if (!short_.entries.empty()) oldest = short_.entries.front().enqueued;
  if (!long_.entries.empty()) {
    oldest = std::min(oldest, long_.entries.front().enqueued);
  }
  return oldest;
}

Queue::Lane& Queue::NextLaneLocked() {
  if (long_.entries.empty()) return short_;
  if (short_.entries.empty()) return long_;
  // Ties go to the short lane: it is the one whose callers wait on it.
  return short_.served <= long_.served ? short_ : long_;
}

std::vector<Queue::Dead> Queue::RemoveDeadLocked(absl::Time now) {
  std::vector<Dead> dead;
  for (Lane* lane : {&short_, &long_}) {
    std::deque<Entry> live;
    while (!lane->entries.empty()) {
      Entry entry = PopLocked(*lane);
      absl::Status why = WhyDead(*entry.task, entry.deadline, now);
      if (why.ok()) {
        live.push_back(std::move(entry));
      } else {
        dead.push_back({std::move(entry.task), std::move(why)});
      }
    }
    const int64_t served = lane->served;
    for (Entry& entry : live) PushLocked(std::move(entry));
    lane->served = served;
  }
  return dead;
}

int Queue::queued_items() const {
  absl::MutexLock lock(&scheduler_.mu_);
  return items_;
}

Cost Queue::queued_cost() const {
  absl::MutexLock lock(&scheduler_.mu_);
  return cost_;
}

Scheduler::Scheduler(Options options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

Scheduler::~Scheduler() { Stop(); }

Queue* Scheduler::AddQueue(std::string name, QueueOptions options,
                           Processor processor) {
  options.max_batch_size = std::max(1, options.max_batch_size);
  options.max_queued_items = std::max(1, options.max_queued_items);
  options.max_queued_steps = std::max<int64_t>(1, options.max_queued_steps);
  options.max_queued_values = std::max<int64_t>(1, options.max_queued_values);
  options.slice_steps = std::max<int64_t>(0, options.slice_steps);
  absl::MutexLock lock(&mu_);
  queues_.push_back(std::unique_ptr<Queue>(
      new Queue(*this, std::move(name), options, std::move(processor))));
  return queues_.back().get();
}

void Scheduler::Start() {
  absl::MutexLock threads_lock(&threads_mu_);
  const int n = std::max(1, options_.num_threads);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Loop(); });
}

void Scheduler::Stop() {
  // A second caller waits here until the first is done, then finds nothing
  // left to join or drop.
  absl::MutexLock threads_lock(&threads_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  // Without threads (never started), nobody else will answer what waits.
  std::vector<std::unique_ptr<Task>> left;
  {
    absl::MutexLock lock(&mu_);
    for (auto& queue : queues_) {
      queue->AssertHeld();
      for (Queue::Lane* lane : {&queue->short_, &queue->long_}) {
        while (!lane->entries.empty()) {
          left.push_back(std::move(queue->PopLocked(*lane).task));
        }
      }
    }
  }
  for (auto& task : left) {
    DropQuietly(*task, absl::UnavailableError("the server is shutting down"));
  }
}

std::vector<std::unique_ptr<Task>> Scheduler::TakeAll(Queue& queue) {
  queue.AssertHeld();
  std::vector<std::unique_ptr<Task>> tasks;
  for (Queue::Lane* lane : {&queue.short_, &queue.long_}) {
    while (!lane->entries.empty()) {
      tasks.push_back(std::move(queue.PopLocked(*lane).task));
    }
  }
  return tasks;
}

void Scheduler::RemoveQueue(Queue* queue, const std::string& why) {
  std::unique_ptr<Queue> owned;
  std::vector<std::unique_ptr<Task>> left;
  {
    absl::MutexLock lock(&mu_);
    queue->AssertHeld();
    queue->removed_ = why;
    // Its running batches may continue tasks into it: wait for them, then
    // nothing can add to it any more.
    auto idle = [queue]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return queue->running_ == 0;
    };
    mu_.Await(absl::Condition(&idle));
    left = TakeAll(*queue);
    auto it = std::find_if(queues_.begin(), queues_.end(),
                           [queue](const auto& q) { return q.get() == queue; });
    if (it != queues_.end()) {
      owned = std::move(*it);
      queues_.erase(it);
    }
  }
  for (auto& task : left) DropQuietly(*task, absl::UnavailableError(why));
}

void Scheduler::Poke() { cv_.SignalAll(); }

Queue* Scheduler::PickReady(absl::Time now, absl::Time& wake) {
  Queue* best = nullptr;
  absl::Time best_oldest;
  wake = absl::InfiniteFuture();
  for (auto& queue : queues_) {
    queue->AssertHeld();
    if (queue->EmptyLocked()) continue;
    const absl::Time oldest = queue->OldestLocked();
    const absl::Time due = oldest + queue->options_.max_queue_delay;
    const bool ready = stopping_ ||
                       queue->items_ >= queue->options_.max_batch_size ||
                       due <= now;
    if (!ready) {
      wake = std::min(wake, due);
    } else if (best == nullptr || oldest < best_oldest) {
      best = queue.get();
      best_oldest = oldest;
    }
  }
  return best;
}

std::vector<QueueEntry> Scheduler::TakeBatch(Queue& queue) {
  queue.AssertHeld();
  Queue::Lane& lane = queue.NextLaneLocked();
  std::vector<QueueEntry> batch;
  int items = 0;
  int64_t steps = 0;
  while (!lane.entries.empty()) {
    const QueueEntry& next = lane.entries.front();
    if (!batch.empty() && items + next.size > queue.options_.max_batch_size) {
      break;
    }
    items += next.size;
    steps += next.cost.steps;
    batch.push_back(queue.PopLocked(lane));
  }
  // A long batch runs one slice, whatever its tasks have left.
  if (&lane == &queue.long_) {
    steps = std::min(steps, queue.options_.slice_steps);
  }
  lane.served += steps;
  return batch;
}

bool Scheduler::WaitAndClose(Closed& closed) {
  while (true) {
    if (stopping_ && queued_tasks_ == 0) return false;
    const absl::Time now = clock_.Now();
    absl::Time wake;
    Queue* queue = PickReady(now, wake);
    if (queue != nullptr) {
      closed = {queue, TakeBatch(*queue), now};
      queue->AssertHeld();
      ++queue->running_;
      // Another thread may serve what is left while this one computes.
      if (queued_tasks_ > 0) cv_.Signal();
      return true;
    }
    if (wake == absl::InfiniteFuture()) {
      cv_.Wait(&mu_);
    } else {
      cv_.WaitWithTimeout(&mu_, wake - now);
    }
  }
}

void Scheduler::Loop() {
  if (options_.on_thread_start) options_.on_thread_start();
  while (true) {
    Closed closed;
    {
      absl::MutexLock lock(&mu_);
      if (!WaitAndClose(closed)) return;
    }
    Queue* queue = closed.queue;
    RunBatch(std::move(closed));
    absl::MutexLock lock(&mu_);
    queue->AssertHeld();
    --queue->running_;
  }
}

void Scheduler::RunBatch(Closed closed) {
  Queue& queue = *closed.queue;
  Batch live;
  for (QueueEntry& entry : closed.entries) {
    absl::Status why = WhyDead(*entry.task, entry.deadline, closed.now);
    if (!why.ok()) {
      DropQuietly(*entry.task, why);
    } else {
      entry.task->enqueued = entry.enqueued;
      live.push_back(std::move(entry.task));
    }
  }
  if (live.empty()) return;
  const size_t tasks = live.size();
  absl::Status failed;
  try {
    queue.processor_(live);
  } catch (const std::bad_alloc&) {
    failed = absl::ResourceExhaustedError(
        absl::StrCat("the server ran out of memory running a batch of ", tasks,
                     " call(s) of queue ", queue.name(), "; retry later"));
  } catch (const std::exception& e) {
    failed = absl::InternalError(absl::StrCat(
        "running a batch of queue ", queue.name(), " failed: ", e.what()));
  } catch (...) {
    failed = absl::InternalError(
        absl::StrCat("running a batch of queue ", queue.name(),
                     " failed with an exception of unknown type"));
  }
  if (failed.ok()) {
    failed = absl::InternalError(absl::StrCat(
        "queue ", queue.name(), "'s processor left the call unanswered"));
  }
  int unanswered = 0;
  for (auto& task : live) {
    if (task == nullptr) continue;
    ++unanswered;
    DropQuietly(*task, failed);
  }
  if (unanswered > 0) {
    Log("batching: ", unanswered, " of ", tasks, " call(s) of queue ",
        queue.name(), " failed: ", failed.ToString());
  }
}

}  // namespace rnnserve::batching
