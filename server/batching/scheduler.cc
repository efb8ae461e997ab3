#include "server/batching/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace rnnserve::batching {
namespace {

// Tells a task whose caller gave up why it will not run.
void DropDead(Task& task, absl::Time now) {
  if (task.cancelled()) {
    task.Drop(absl::CancelledError("the call was cancelled"));
  } else if (task.deadline <= now) {
    task.Drop(absl::DeadlineExceededError(
        "the call's deadline passed while it was queued"));
  }
}

}  // namespace

Queue::Queue(Scheduler& scheduler, std::string name, QueueOptions options,
             Processor processor)
    : scheduler_(scheduler),
      name_(std::move(name)),
      options_(options),
      processor_(std::move(processor)) {}

absl::Status Queue::Schedule(std::unique_ptr<Task>& task) {
  const int size = task->size();
  std::vector<std::unique_ptr<Task>> dead;
  absl::Status status;
  {
    absl::MutexLock lock(&scheduler_.mu_);
    if (scheduler_.stopping_) {
      return absl::UnavailableError("the server is shutting down");
    }
    const absl::Time now = scheduler_.clock_.Now();
    // Callers that gave up must not keep live ones out.
    if (items_ > 0 && items_ + size > options_.max_queued_items) {
      dead = RemoveDeadLocked(now);
    }
    // A task larger than the whole queue still gets in when the queue is
    // empty; otherwise it could never run.
    if (items_ > 0 && items_ + size > options_.max_queued_items) {
      status = absl::ResourceExhaustedError(absl::StrCat(
          "queue ", name_, " is full (", items_, " of ",
          options_.max_queued_items, " items waiting); retry later"));
    } else {
      task->enqueued = now;
      items_ += size;
      ++scheduler_.queued_tasks_;
      tasks_.push_back(std::move(task));
    }
  }
  for (auto& t : dead) DropDead(*t, scheduler_.clock_.Now());
  if (status.ok()) scheduler_.cv_.Signal();
  return status;
}

std::vector<std::unique_ptr<Task>> Queue::RemoveDeadLocked(absl::Time now) {
  std::vector<std::unique_ptr<Task>> dead;
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    if ((*it)->cancelled() || (*it)->deadline <= now) {
      items_ -= (*it)->size();
      --scheduler_.queued_tasks_;
      dead.push_back(std::move(*it));
      it = tasks_.erase(it);
    } else {
      ++it;
    }
  }
  return dead;
}

int Queue::queued_items() const {
  absl::MutexLock lock(&scheduler_.mu_);
  return items_;
}

Scheduler::Scheduler(Options options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

Scheduler::~Scheduler() { Stop(); }

Queue* Scheduler::AddQueue(std::string name, QueueOptions options,
                           Processor processor) {
  options.max_batch_size = std::max(1, options.max_batch_size);
  options.max_queued_items = std::max(1, options.max_queued_items);
  absl::MutexLock lock(&mu_);
  queues_.push_back(std::unique_ptr<Queue>(
      new Queue(*this, std::move(name), options, std::move(processor))));
  return queues_.back().get();
}

void Scheduler::Start() {
  const int n = std::max(1, options_.num_threads);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Loop(); });
}

void Scheduler::Stop() {
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
      for (auto& task : queue->tasks_) left.push_back(std::move(task));
      queue->tasks_.clear();
      queue->items_ = 0;
    }
    queued_tasks_ = 0;
  }
  for (auto& task : left) {
    task->Drop(absl::UnavailableError("the server is shutting down"));
  }
}

void Scheduler::Poke() { cv_.SignalAll(); }

Queue* Scheduler::PickReady(absl::Time now, absl::Time& wake) {
  Queue* best = nullptr;
  wake = absl::InfiniteFuture();
  for (auto& queue : queues_) {
    if (queue->tasks_.empty()) continue;
    const absl::Time oldest = queue->tasks_.front()->enqueued;
    const absl::Time due = oldest + queue->options_.max_queue_delay;
    const bool ready = stopping_ ||
                       queue->items_ >= queue->options_.max_batch_size ||
                       due <= now;
    if (!ready) {
      wake = std::min(wake, due);
    } else if (best == nullptr || oldest < best->tasks_.front()->enqueued) {
      best = queue.get();
    }
  }
  return best;
}

Batch Scheduler::TakeBatch(Queue& queue) {
  Batch batch;
  int items = 0;
  while (!queue.tasks_.empty()) {
    const int size = queue.tasks_.front()->size();
    if (!batch.empty() && items + size > queue.options_.max_batch_size) break;
    items += size;
    batch.push_back(std::move(queue.tasks_.front()));
    queue.tasks_.pop_front();
  }
  queue.items_ -= items;
  queued_tasks_ -= static_cast<int>(batch.size());
  return batch;
}

void Scheduler::Loop() {
  if (options_.on_thread_start) options_.on_thread_start();
  absl::MutexLock lock(&mu_);
  while (true) {
    if (stopping_ && queued_tasks_ == 0) return;
    const absl::Time now = clock_.Now();
    absl::Time wake;
    Queue* queue = PickReady(now, wake);
    if (queue == nullptr) {
      if (wake == absl::InfiniteFuture()) {
        cv_.Wait(&mu_);
      } else {
        cv_.WaitWithTimeout(&mu_, wake - now);
      }
      continue;
    }
    Batch batch = TakeBatch(*queue);
    // Another thread may serve what is left while this one computes.
    if (queued_tasks_ > 0) cv_.Signal();
    mu_.Unlock();
    Batch live;
    for (auto& task : batch) {
      if (task->cancelled() || task->deadline <= now) {
        DropDead(*task, now);
      } else {
        live.push_back(std::move(task));
      }
    }
    if (!live.empty()) queue->processor_(std::move(live));
    mu_.Lock();
  }
}

}  // namespace rnnserve::batching
