#include "server/batching/scheduler.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rnnserve::batching {
namespace {

using ::testing::ElementsAre;

// A task that records how it ended.
//
// Each test declares its Outcome and Recorder before its Scheduler, so that
// they outlive it: the Scheduler's destructor stops the compute threads,
// which may still be inside the Recorder's processor, and drops what is
// still queued, into the Outcome.
struct Outcome {
  absl::Mutex mu;
  std::vector<absl::StatusCode> dropped;
  std::vector<std::string> messages;  // Of the drops, in order.
  int processed = 0;
  int lost = 0;      // Destroyed without an answer: a caller left waiting.
  int answered = 0;  // Dropped or processed.

  int target = 0;

  // Waits until `n` tasks were answered.
  void WaitAnswered(int n) {
    absl::MutexLock lock(&mu);
    target = n;
    mu.Await(absl::Condition(this, &Outcome::Reached));
  }
  bool Reached() const { return answered >= target; }
};

class TestTask : public Task {
 public:
  TestTask(int size, Outcome* outcome, bool cancelled = false, Cost cost = {})
      : size_(size), outcome_(outcome), cancelled_(cancelled), cost_(cost) {}
  ~TestTask() override {
    absl::MutexLock lock(&outcome_->mu);
    if (!answered_) ++outcome_->lost;
  }
  int size() const override { return size_; }
  Cost cost() const override { return cost_; }
  bool cancelled() const override { return cancelled_; }
  void Drop(absl::Status why) override {
    Answer();
    absl::MutexLock lock(&outcome_->mu);
    outcome_->dropped.push_back(why.code());
    outcome_->messages.emplace_back(why.message());
  }
  void Process() {
    Answer();
    absl::MutexLock lock(&outcome_->mu);
    ++outcome_->processed;
  }

 private:
  // A second answer would be a second reply to one call.
  void Answer() {
    EXPECT_FALSE(answered_) << "a task was answered twice";
    answered_ = true;
    absl::MutexLock lock(&outcome_->mu);
    ++outcome_->answered;
  }

  int size_;
  Outcome* outcome_;
  bool cancelled_;
  Cost cost_;
  bool answered_ = false;
};

// Completes every task of a batch, as a processor must: each moved out of
// the batch first.
void ProcessAll(Batch& batch) {
  for (auto& task : batch) {
    std::unique_ptr<Task> taken = std::move(task);
    static_cast<TestTask&>(*taken).Process();
  }
}

// Holds the compute thread in the first batch that passes it, once
// enabled, until released: what is queued meanwhile is known exactly.
class FirstBatchGate {
 public:
  void Enable() { enabled_ = true; }
  void PassOrHold() {
    if (enabled_ && first_.exchange(false)) {
      entered_.Notify();
      release_.WaitForNotification();
    }
  }
  void WaitUntilHeld() { entered_.WaitForNotification(); }
  void Release() { release_.Notify(); }

 private:
  bool enabled_ = false;
  std::atomic<bool> first_{true};
  absl::Notification entered_;
  absl::Notification release_;
};

// Records the item counts of the batches it receives; can hold the compute
// thread on the first batch until released.
class Recorder {
 public:
  Processor processor() {
    return [this](Batch& batch) {
      int items = 0;
      for (auto& task : batch) items += task->size();
      const int tasks = static_cast<int>(batch.size());
      ProcessAll(batch);
      {
        absl::MutexLock lock(&mu_);
        batches_.push_back(items);
        tasks_ += tasks;
      }
      gate_.PassOrHold();
    };
  }
  void HoldFirstBatch() { gate_.Enable(); }
  void WaitUntilHeld() { gate_.WaitUntilHeld(); }
  void Release() { gate_.Release(); }

  // Waits until `n` tasks were processed.
  void WaitForTasks(int n) {
    absl::MutexLock lock(&mu_);
    target_ = n;
    mu_.Await(absl::Condition(this, &Recorder::Reached));
  }
  bool Reached() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return tasks_ >= target_;
  }
  std::vector<int> batches() {
    absl::MutexLock lock(&mu_);
    return batches_;
  }

 private:
  absl::Mutex mu_;
  std::vector<int> batches_ ABSL_GUARDED_BY(mu_);
  int tasks_ ABSL_GUARDED_BY(mu_) = 0;
  int target_ ABSL_GUARDED_BY(mu_) = 0;
  FirstBatchGate gate_;
};

std::unique_ptr<Task> MakeTask(int size, Outcome* outcome,
                               bool cancelled = false, Cost cost = {}) {
  return std::make_unique<TestTask>(size, outcome, cancelled, cost);
}

// Options with only the item bound set, as before costs were counted.
QueueOptions Items(int max_batch_size, absl::Duration delay,
                   int max_queued_items) {
  QueueOptions options;
  options.max_batch_size = max_batch_size;
  options.max_queue_delay = delay;
  options.max_queued_items = max_queued_items;
  return options;
}

TEST(SchedulerTest, TasksQueuedWhileBusyRunAsOneBatch) {
  FakeClock clock;
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  recorder.HoldFirstBatch();
  Queue* queue = scheduler.AddQueue("q", Items(64, absl::ZeroDuration(), 1024),
                                    recorder.processor());
  scheduler.Start();
  auto first = MakeTask(1, &outcome);
  ASSERT_TRUE(queue->Schedule(first).ok());
  recorder.WaitUntilHeld();
  for (int i = 0; i < 9; ++i) {
    auto task = MakeTask(1, &outcome);
    ASSERT_TRUE(queue->Schedule(task).ok());
  }
  EXPECT_EQ(queue->queued_items(), 9);
  recorder.Release();
  recorder.WaitForTasks(10);
  EXPECT_THAT(recorder.batches(), ElementsAre(1, 9));
}

TEST(SchedulerTest, BatchesNeverExceedMaxBatchSize) {
  FakeClock clock;
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  recorder.HoldFirstBatch();
  Queue* queue = scheduler.AddQueue("q", Items(4, absl::ZeroDuration(), 1024),
                                    recorder.processor());
  scheduler.Start();
  auto first = MakeTask(1, &outcome);
  ASSERT_TRUE(queue->Schedule(first).ok());
  recorder.WaitUntilHeld();
  for (int size : {2, 1, 3, 2, 2}) {
    auto task = MakeTask(size, &outcome);
    ASSERT_TRUE(queue->Schedule(task).ok());
  }
  recorder.Release();
  recorder.WaitForTasks(6);
  // Whole tasks only: 2+1 fit in 4, 3 does not join them.
  EXPECT_THAT(recorder.batches(), ElementsAre(1, 3, 3, 4));
}

TEST(SchedulerTest, TaskLargerThanMaxBatchRunsAlone) {
  FakeClock clock;
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  Queue* queue = scheduler.AddQueue("q", Items(4, absl::ZeroDuration(), 1024),
                                    recorder.processor());
  scheduler.Start();
  auto big = MakeTask(10, &outcome);
  ASSERT_TRUE(queue->Schedule(big).ok());
  recorder.WaitForTasks(1);
  EXPECT_THAT(recorder.batches(), ElementsAre(10));
}

TEST(SchedulerTest, FullQueueRefusesAtOnceAndKeepsTheTaskWithTheCaller) {
  FakeClock clock;
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);  // Not started: nothing drains.
  Queue* queue = scheduler.AddQueue("q", Items(4, absl::ZeroDuration(), 3),
                                    recorder.processor());
  auto a = MakeTask(2, &outcome);
  ASSERT_TRUE(queue->Schedule(a).ok());
  auto b = MakeTask(2, &outcome);
  const absl::Status status = queue->Schedule(b);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("queue q is full"));
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("--max-queued-items"));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->size(), 2);
  EXPECT_EQ(queue->queued_items(), 2);
}

TEST(SchedulerTest, CallersThatGaveUpDoNotKeepLiveOnesOutOfAFullQueue) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);  // Not started: nothing drains.
  Queue* queue = scheduler.AddQueue("q", Items(4, absl::ZeroDuration(), 3),
                                    recorder.processor());
  auto cancelled = MakeTask(1, &outcome, /*cancelled=*/true);
  auto expiring = MakeTask(1, &outcome);
  expiring->deadline = absl::FromUnixSeconds(1001);
  auto live = MakeTask(1, &outcome);
  ASSERT_TRUE(queue->Schedule(cancelled).ok());
  ASSERT_TRUE(queue->Schedule(expiring).ok());
  ASSERT_TRUE(queue->Schedule(live).ok());
  clock.Advance(absl::Seconds(2));  // `expiring` is past its deadline now.
  auto late = MakeTask(2, &outcome);
  ASSERT_TRUE(queue->Schedule(late).ok());
  EXPECT_EQ(queue->queued_items(), 3);  // live and late.
  absl::MutexLock lock(&outcome.mu);
  EXPECT_THAT(outcome.dropped,
              ElementsAre(absl::StatusCode::kCancelled,
                          absl::StatusCode::kDeadlineExceeded));
}

TEST(SchedulerTest, CancelledAndExpiredTasksAreDroppedBeforeCompute) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  Queue* queue = scheduler.AddQueue("q", Items(64, absl::ZeroDuration(), 1024),
                                    recorder.processor());
  auto cancelled = MakeTask(1, &outcome, /*cancelled=*/true);
  auto expired = MakeTask(1, &outcome);
  expired->deadline = absl::FromUnixSeconds(999);
  auto live = MakeTask(1, &outcome);
  live->deadline = absl::FromUnixSeconds(2000);
  ASSERT_TRUE(queue->Schedule(cancelled).ok());
  ASSERT_TRUE(queue->Schedule(expired).ok());
  ASSERT_TRUE(queue->Schedule(live).ok());
  scheduler.Start();
  recorder.WaitForTasks(1);
  scheduler.Stop();
  EXPECT_THAT(recorder.batches(), ElementsAre(1));
  absl::MutexLock lock(&outcome.mu);
  EXPECT_THAT(outcome.dropped,
              ElementsAre(absl::StatusCode::kCancelled,
                          absl::StatusCode::kDeadlineExceeded));
}

TEST(SchedulerTest, QueueDelayWaitsForTheBatchToFill) {
  FakeClock clock;
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  Queue* queue = scheduler.AddQueue("q", Items(4, absl::Seconds(1), 1024),
                                    recorder.processor());
  scheduler.Start();
  // The clock does not move, so only a full batch may run.
  for (int i = 0; i < 4; ++i) {
    auto task = MakeTask(1, &outcome);
    ASSERT_TRUE(queue->Schedule(task).ok());
  }
  recorder.WaitForTasks(4);
  EXPECT_THAT(recorder.batches(), ElementsAre(4));
  // A lone task runs once it has waited out the delay.
  auto lone = MakeTask(1, &outcome);
  ASSERT_TRUE(queue->Schedule(lone).ok());
  EXPECT_EQ(queue->queued_items(), 1);
  clock.Advance(absl::Seconds(1));
  scheduler.Poke();
  recorder.WaitForTasks(5);
  EXPECT_THAT(recorder.batches(), ElementsAre(4, 1));
}

TEST(SchedulerTest, StopRunsWhatIsQueuedThenRefuses) {
  FakeClock clock;
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({2, nullptr}, clock);
  Queue* queue = scheduler.AddQueue("q", Items(2, absl::Hours(1), 1024),
                                    recorder.processor());
  scheduler.Start();
  auto task = MakeTask(1, &outcome);
  ASSERT_TRUE(queue->Schedule(task).ok());
  scheduler.Stop();
  EXPECT_THAT(recorder.batches(), ElementsAre(1));
  auto late = MakeTask(1, &outcome);
  EXPECT_EQ(queue->Schedule(late).code(), absl::StatusCode::kUnavailable);
}

TEST(SchedulerTest, RemoveQueueWaitsForItsBatchDropsTheRestAndOthersGoOn) {
  FakeClock clock;
  Recorder recorder;
  Recorder other_recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  recorder.HoldFirstBatch();
  // Two items make a batch; one alone waits an hour.
  Queue* queue = scheduler.AddQueue("q", Items(2, absl::Hours(1), 1024),
                                    recorder.processor());
  Queue* other = scheduler.AddQueue("other", Items(1, absl::ZeroDuration(), 8),
                                    other_recorder.processor());
  scheduler.Start();
  for (int i = 0; i < 2; ++i) {
    auto task = MakeTask(1, &outcome);
    ASSERT_TRUE(queue->Schedule(task).ok());
  }
  recorder.WaitUntilHeld();
  auto waiting = MakeTask(1, &outcome);
  ASSERT_TRUE(queue->Schedule(waiting).ok());

  absl::Notification removed;
  std::thread remover([&] {
    scheduler.RemoveQueue(queue, "model version 3 was unloaded");
    removed.Notify();
  });
  // The running batch holds the removal.
  EXPECT_FALSE(removed.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  recorder.Release();
  remover.join();

  {
    absl::MutexLock lock(&outcome.mu);
    EXPECT_EQ(outcome.processed, 2);
    EXPECT_THAT(outcome.dropped, ElementsAre(absl::StatusCode::kUnavailable));
    EXPECT_THAT(outcome.messages, ElementsAre("model version 3 was unloaded"));
    EXPECT_EQ(outcome.lost, 0);
  }
  // The scheduler still serves its other queues.
  auto task = MakeTask(1, &outcome);
  ASSERT_TRUE(other->Schedule(task).ok());
  other_recorder.WaitForTasks(1);
}

TEST(SchedulerTest, OldestReadyQueueIsServedFirst) {
  FakeClock clock;
  std::vector<std::string> order;
  absl::Mutex mu;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  auto record = [&](std::string name) {
    return [&, name](Batch& batch) {
      ProcessAll(batch);
      absl::MutexLock lock(&mu);
      order.push_back(name);
    };
  };
  Queue* a = scheduler.AddQueue("a", {}, record("a"));
  Queue* b = scheduler.AddQueue("b", {}, record("b"));
  auto first = MakeTask(1, &outcome);
  ASSERT_TRUE(b->Schedule(first).ok());
  clock.Advance(absl::Milliseconds(1));
  auto second = MakeTask(1, &outcome);
  ASSERT_TRUE(a->Schedule(second).ok());
  scheduler.Start();
  scheduler.Stop();
  EXPECT_THAT(order, ElementsAre("b", "a"));
}

// A clock that steps by a set amount right after its next read, as a wall
// clock corrected between two reads of one decision.
class SteppingClock : public Clock {
 public:
  explicit SteppingClock(absl::Time start) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    const absl::Time now = now_;
    now_ += step_;
    step_ = absl::ZeroDuration();
    return now;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }
  void StepAfterNextRead(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    step_ = d;
  }

 private:
  mutable absl::Mutex mu_;
  mutable absl::Time now_ ABSL_GUARDED_BY(mu_);
  mutable absl::Duration step_ ABSL_GUARDED_BY(mu_);
};

TEST(SchedulerTest, ATaskFoundDeadIsAnsweredEvenIfTheClockStepsBack) {
  SteppingClock clock(absl::FromUnixSeconds(1000));
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);  // Not started: nothing drains.
  Queue* queue = scheduler.AddQueue("q", Items(4, absl::ZeroDuration(), 1),
                                    recorder.processor());
  auto expiring = MakeTask(1, &outcome);
  expiring->deadline = absl::FromUnixSeconds(1001);
  ASSERT_TRUE(queue->Schedule(expiring).ok());
  // The queue is full, so scheduling `late` finds `expiring` past its
  // deadline and takes it out; then the clock steps back before it is told.
  clock.Set(absl::FromUnixSeconds(1002));
  clock.StepAfterNextRead(absl::Seconds(-2));
  auto late = MakeTask(1, &outcome);
  ASSERT_TRUE(queue->Schedule(late).ok());
  absl::MutexLock lock(&outcome.mu);
  EXPECT_EQ(outcome.lost, 0);
  EXPECT_THAT(outcome.dropped,
              ElementsAre(absl::StatusCode::kDeadlineExceeded));
}

TEST(SchedulerTest, EveryTaskIsAnsweredOnceWhileTheClockJumpsBothWays) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  Recorder recorder;
  Outcome outcome;
  constexpr int kTasks = 200;
  {
    Scheduler scheduler({2, nullptr}, clock);
    Queue* queue = scheduler.AddQueue("q", Items(3, absl::ZeroDuration(), 8),
                                      recorder.processor());
    scheduler.Start();
    for (int i = 0; i < kTasks; ++i) {
      auto task = MakeTask(1 + i % 3, &outcome);
      task->deadline = absl::FromUnixSeconds(1000 + i % 5);
      clock.Advance(absl::Seconds(i % 2 == 0 ? 3 : -3));
      const absl::Status status = queue->Schedule(task);
      if (!status.ok()) {
        // Refused: the caller is told, and keeps the task.
        ASSERT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
        static_cast<TestTask&>(*task).Process();
      }
    }
    scheduler.Stop();
  }
  absl::MutexLock lock(&outcome.mu);
  EXPECT_EQ(outcome.lost, 0);
}

TEST(SchedulerTest,
     AThrowingProcessorFailsItsUnansweredTasksAndTheThreadGoesOn) {
  FakeClock clock;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  std::atomic<int> batches{0};
  Queue* queue = scheduler.AddQueue("m/Classify", {}, [&](Batch& batch) {
    const int n = ++batches;
    if (n == 1) {
      // Answers its first task, then runs out of memory.
      std::unique_ptr<Task> first = std::move(batch[0]);
      static_cast<TestTask&>(*first).Process();
      throw std::bad_alloc();
    }
    if (n == 2) throw std::runtime_error("engine exploded");
    ProcessAll(batch);
  });
  for (int i = 0; i < 3; ++i) {
    auto task = MakeTask(1, &outcome);
    ASSERT_TRUE(queue->Schedule(task).ok());
  }
  scheduler.Start();  // The three run as one batch.
  outcome.WaitAnswered(3);
  auto second = MakeTask(1, &outcome);
  ASSERT_TRUE(queue->Schedule(second).ok());
  outcome.WaitAnswered(4);
  auto third = MakeTask(1, &outcome);
  ASSERT_TRUE(queue->Schedule(third).ok());
  scheduler.Stop();
  absl::MutexLock lock(&outcome.mu);
  EXPECT_EQ(outcome.lost, 0);
  EXPECT_EQ(outcome.processed, 2);  // The first task, and the third batch.
  EXPECT_THAT(outcome.dropped, ElementsAre(absl::StatusCode::kResourceExhausted,
                                           absl::StatusCode::kResourceExhausted,
                                           absl::StatusCode::kInternal));
  EXPECT_THAT(outcome.messages[0], ::testing::HasSubstr("out of memory"));
  EXPECT_THAT(outcome.messages[0], ::testing::HasSubstr("m/Classify"));
  EXPECT_THAT(outcome.messages[2], ::testing::HasSubstr("engine exploded"));
}

TEST(SchedulerTest, AProcessorThatLeavesTasksUnansweredIsCaught) {
  FakeClock clock;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  Queue* queue = scheduler.AddQueue("q", {}, [](Batch&) {});
  auto task = MakeTask(1, &outcome);
  ASSERT_TRUE(queue->Schedule(task).ok());
  scheduler.Start();
  scheduler.Stop();
  absl::MutexLock lock(&outcome.mu);
  EXPECT_EQ(outcome.lost, 0);
  EXPECT_THAT(outcome.dropped, ElementsAre(absl::StatusCode::kInternal));
}

TEST(SchedulerTest, StopFromTwoThreadsAtOnceAndAgain) {
  for (int round = 0; round < 20; ++round) {
    FakeClock clock;
    Recorder recorder;
    Outcome outcome;
    Scheduler scheduler({2, nullptr}, clock);
    recorder.HoldFirstBatch();
    Queue* queue = scheduler.AddQueue("q", {}, recorder.processor());
    scheduler.Start();
    auto task = MakeTask(1, &outcome);
    ASSERT_TRUE(queue->Schedule(task).ok());
    recorder.WaitUntilHeld();
    // Both wait on the held batch: two joins of the same threads.
    std::thread a([&] { scheduler.Stop(); });
    std::thread b([&] { scheduler.Stop(); });
    recorder.Release();
    a.join();
    b.join();
    scheduler.Stop();
    absl::MutexLock lock(&outcome.mu);
    EXPECT_EQ(outcome.processed, 1);
    EXPECT_EQ(outcome.lost, 0);
  }
}

QueueOptions Costs(int64_t max_queued_steps, int64_t max_queued_values) {
  QueueOptions options;
  options.max_queued_steps = max_queued_steps;
  options.max_queued_values = max_queued_values;
  return options;
}

TEST(SchedulerTest, QueuedStepsAreBounded) {
  FakeClock clock;
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);  // Not started: nothing drains.
  Queue* queue = scheduler.AddQueue("m/Classify", Costs(100, 1 << 30),
                                    recorder.processor());
  auto a = MakeTask(1, &outcome, false, {60, 60});
  ASSERT_TRUE(queue->Schedule(a).ok());
  auto b = MakeTask(1, &outcome, false, {41, 41});
  const absl::Status status = queue->Schedule(b);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("queue m/Classify is full"));
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("100 steps"));
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("--max-queued-steps"));
  ASSERT_NE(b, nullptr);                            // Still the caller's.
  auto c = MakeTask(1, &outcome, false, {40, 40});  // Exactly fills it.
  EXPECT_TRUE(queue->Schedule(c).ok());
  EXPECT_EQ(queue->queued_cost().steps, 100);
  EXPECT_EQ(queue->queued_items(), 2);
}

TEST(SchedulerTest, QueuedValuesAreBounded) {
  FakeClock clock;
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);  // Not started: nothing drains.
  Queue* queue =
      scheduler.AddQueue("q", Costs(1 << 30, 1000), recorder.processor());
  auto a = MakeTask(1, &outcome, false, {10, 900});
  ASSERT_TRUE(queue->Schedule(a).ok());
  auto b = MakeTask(1, &outcome, false, {10, 101});
  const absl::Status status = queue->Schedule(b);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("--max-queued-values"));
  auto c = MakeTask(1, &outcome, false, {10, 100});
  EXPECT_TRUE(queue->Schedule(c).ok());
  EXPECT_EQ(queue->queued_cost().values, 1000);
}

TEST(SchedulerTest, ATaskCostlierThanTheBoundRunsAloneInAnEmptyQueue) {
  FakeClock clock;
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  recorder.HoldFirstBatch();
  Queue* queue = scheduler.AddQueue("q", Costs(100, 100), recorder.processor());
  auto huge = MakeTask(1, &outcome, false, {1000, 1000});
  ASSERT_TRUE(queue->Schedule(huge).ok());
  auto other = MakeTask(1, &outcome, false, {1, 1});
  EXPECT_EQ(queue->Schedule(other).code(),
            absl::StatusCode::kResourceExhausted);
  scheduler.Start();
  recorder.WaitUntilHeld();  // `huge` is out of the queue, running.
  EXPECT_EQ(queue->queued_cost().steps, 0);
  auto next = MakeTask(1, &outcome, false, {100, 100});
  EXPECT_TRUE(queue->Schedule(next).ok());
  recorder.Release();
  recorder.WaitForTasks(2);
  EXPECT_EQ(queue->queued_cost().steps, 0);
  EXPECT_EQ(queue->queued_cost().values, 0);
}

TEST(SchedulerTest, CallersThatGaveUpFreeTheirCostForLiveOnes) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);  // Not started: nothing drains.
  Queue* queue =
      scheduler.AddQueue("q", Costs(100, 1000), recorder.processor());
  auto cancelled = MakeTask(1, &outcome, /*cancelled=*/true, {60, 60});
  auto live = MakeTask(1, &outcome, false, {30, 30});
  ASSERT_TRUE(queue->Schedule(cancelled).ok());
  ASSERT_TRUE(queue->Schedule(live).ok());
  auto next = MakeTask(1, &outcome, false, {70, 70});
  ASSERT_TRUE(queue->Schedule(next).ok());
  EXPECT_EQ(queue->queued_cost().steps, 100);
  absl::MutexLock lock(&outcome.mu);
  EXPECT_THAT(outcome.dropped, ElementsAre(absl::StatusCode::kCancelled));
}

// A long task run in slices: each batch runs `slice` of its steps; what is
// left goes back to the queue. Its name goes into a shared log per batch.
class SlicedTask : public Task {
 public:
  SlicedTask(std::string name, int64_t steps, Outcome* outcome)
      : name_(std::move(name)), left_(steps), outcome_(outcome) {}
  int size() const override { return 1; }
  Cost cost() const override { return {left_, left_}; }
  bool sliceable() const override { return true; }
  bool cancelled() const override { return cancelled_.load(); }
  void Drop(absl::Status why) override {
    absl::MutexLock lock(&outcome_->mu);
    outcome_->dropped.push_back(why.code());
    ++outcome_->answered;
  }
  // Runs one slice; true when the task is done.
  bool Run(int64_t slice) {
    left_ -= std::min(left_, slice);
    if (left_ > 0) return false;
    absl::MutexLock lock(&outcome_->mu);
    ++outcome_->processed;
    ++outcome_->answered;
    return true;
  }
  void Cancel() { cancelled_ = true; }
  const std::string& name() const { return name_; }

 private:
  const std::string name_;
  int64_t left_;
  Outcome* outcome_;
  std::atomic<bool> cancelled_{false};
};

// Runs short TestTasks whole and SlicedTasks one slice at a time, logging
// each batch as its tasks' names ("S" for a TestTask); holds the compute
// thread at the start of its first batch when asked.
class SliceRunner {
 public:
  explicit SliceRunner(int64_t slice) : slice_(slice) {}
  void set_queue(Queue* queue) { queue_ = queue; }
  Processor processor() {
    return [this](Batch& batch) {
      gate_.PassOrHold();
      std::string names;
      for (auto& task : batch) {
        std::unique_ptr<Task> taken = std::move(task);
        if (auto* sliced = dynamic_cast<SlicedTask*>(taken.get())) {
          names += sliced->name();
          if (!sliced->Run(slice_)) queue_->Continue(std::move(taken));
        } else {
          names += "S";
          static_cast<TestTask&>(*taken).Process();
        }
      }
      {
        absl::MutexLock lock(&mu_);
        log_.push_back(names);
      }
    };
  }
  void HoldFirstBatch() { gate_.Enable(); }
  void WaitUntilHeld() { gate_.WaitUntilHeld(); }
  void Release() { gate_.Release(); }
  std::vector<std::string> log() {
    absl::MutexLock lock(&mu_);
    return log_;
  }

 private:
  const int64_t slice_;
  Queue* queue_ = nullptr;
  absl::Mutex mu_;
  std::vector<std::string> log_ ABSL_GUARDED_BY(mu_);
  FirstBatchGate gate_;
};

QueueOptions Sliced(int max_batch_size, int64_t slice_steps) {
  QueueOptions options;
  options.max_batch_size = max_batch_size;
  options.slice_steps = slice_steps;
  return options;
}

TEST(SchedulerTest, AShortCallWaitsForAtMostOneSliceOfLongWork) {
  FakeClock clock;
  SliceRunner runner(100);
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  Queue* queue = scheduler.AddQueue("q", Sliced(1, 100), runner.processor());
  runner.set_queue(queue);
  runner.HoldFirstBatch();
  std::unique_ptr<Task> a = std::make_unique<SlicedTask>("A", 300, &outcome);
  std::unique_ptr<Task> b = std::make_unique<SlicedTask>("B", 300, &outcome);
  ASSERT_TRUE(queue->Schedule(a).ok());
  ASSERT_TRUE(queue->Schedule(b).ok());
  scheduler.Start();
  runner.WaitUntilHeld();  // In A's first slice.
  auto s = MakeTask(1, &outcome, false, {28, 28});
  ASSERT_TRUE(queue->Schedule(s).ok());
  runner.Release();
  outcome.WaitAnswered(3);
  scheduler.Stop();
  // The short call came while B waited for its first slice; it still goes
  // first. Before lanes, it waited for B's whole 300 steps after A's.
  // A's last 100 steps fit one slice: they wait in the short lane, which
  // has run fewer steps, so they go before B's second slice.
  EXPECT_THAT(runner.log(), ElementsAre("A", "S", "B", "A", "A", "B", "B"));
  absl::MutexLock lock(&outcome.mu);
  EXPECT_EQ(outcome.processed, 3);
  EXPECT_TRUE(outcome.dropped.empty());
}

TEST(SchedulerTest, LanesShareTheComputeByStepsWhenBothAreBusy) {
  FakeClock clock;
  SliceRunner runner(100);
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  Queue* queue = scheduler.AddQueue("q", Sliced(1, 100), runner.processor());
  runner.set_queue(queue);
  std::unique_ptr<Task> long_task =
      std::make_unique<SlicedTask>("L", 100'000, &outcome);
  ASSERT_TRUE(queue->Schedule(long_task).ok());
  for (int i = 0; i < 40; ++i) {
    auto s = MakeTask(1, &outcome, false, {50, 50});
    ASSERT_TRUE(queue->Schedule(s).ok());
  }
  scheduler.Start();
  // Until the log holds the last short call (it is written after the
  // calls are answered).
  std::vector<std::string> log = runner.log();
  while (std::count(log.begin(), log.end(), "S") < 40) {
    std::this_thread::yield();
    log = runner.log();
  }
  // While short calls wait, the long lane's 100-step slices alternate with
  // two 50-step calls: up to the last short call, both lanes ran the same
  // steps, give or take one batch.
  int64_t short_steps = 0;
  int64_t long_steps = 0;
  for (const std::string& batch : log) {
    if (short_steps == 40 * 50) break;
    (batch == "L" ? long_steps : short_steps) += batch == "L" ? 100 : 50;
  }
  EXPECT_EQ(short_steps, 40 * 50);
  EXPECT_LE(std::abs(long_steps - short_steps), 100) << long_steps;
  scheduler.Stop();
}

TEST(SchedulerTest, SliceableTasksWithinOneSliceStayInTheShortLane) {
  FakeClock clock;
  SliceRunner runner(100);
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  Queue* queue = scheduler.AddQueue("q", Sliced(8, 100), runner.processor());
  runner.set_queue(queue);
  runner.HoldFirstBatch();
  auto first = MakeTask(1, &outcome, false, {10, 10});
  ASSERT_TRUE(queue->Schedule(first).ok());
  scheduler.Start();
  runner.WaitUntilHeld();
  std::unique_ptr<Task> small =
      std::make_unique<SlicedTask>("s", 100, &outcome);
  auto other = MakeTask(1, &outcome, false, {10, 10});
  ASSERT_TRUE(queue->Schedule(small).ok());
  ASSERT_TRUE(queue->Schedule(other).ok());
  runner.Release();
  outcome.WaitAnswered(3);
  scheduler.Stop();
  // 100 steps fit one slice: batched with the other short call, not alone.
  EXPECT_THAT(runner.log(), ElementsAre("S", "sS"));
}

TEST(SchedulerTest, ALongCallWhoseCallerGaveUpStopsAtTheNextSlice) {
  FakeClock clock;
  SliceRunner runner(100);
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  Queue* queue = scheduler.AddQueue("q", Sliced(1, 100), runner.processor());
  runner.set_queue(queue);
  runner.HoldFirstBatch();
  auto* raw = new SlicedTask("L", 1000, &outcome);
  std::unique_ptr<Task> task(raw);
  ASSERT_TRUE(queue->Schedule(task).ok());
  scheduler.Start();
  runner.WaitUntilHeld();
  raw->Cancel();  // Still running its first slice: the task is alive.
  runner.Release();
  outcome.WaitAnswered(1);
  scheduler.Stop();
  EXPECT_THAT(runner.log(), ElementsAre("L"));
  absl::MutexLock lock(&outcome.mu);
  EXPECT_THAT(outcome.dropped, ElementsAre(absl::StatusCode::kCancelled));
}

TEST(SchedulerTest, StopRunsLongWorkToItsEndAndContinueIgnoresTheBounds) {
  FakeClock clock;
  SliceRunner runner(100);
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  QueueOptions options = Sliced(1, 100);
  options.max_queued_steps = 150;
  Queue* queue = scheduler.AddQueue("q", options, runner.processor());
  runner.set_queue(queue);
  runner.HoldFirstBatch();
  std::unique_ptr<Task> task = std::make_unique<SlicedTask>("L", 500, &outcome);
  ASSERT_TRUE(queue->Schedule(task).ok());
  scheduler.Start();
  runner.WaitUntilHeld();  // L is out of the queue, about to run.
  auto s = MakeTask(1, &outcome, false, {50, 50});
  ASSERT_TRUE(queue->Schedule(s).ok());
  std::thread stopper([&scheduler] { scheduler.Stop(); });
  // Wait until Stop has begun (until then a call that does not fit is
  // refused for room). Then L's 400 steps left come back past the 150-step
  // bound, beside S, while stopping; and still run to the end.
  auto probe = MakeTask(1, &outcome, false, {101, 101});
  while (queue->Schedule(probe).code() != absl::StatusCode::kUnavailable) {
    std::this_thread::yield();
  }
  runner.Release();
  stopper.join();
  EXPECT_THAT(runner.log(), ElementsAre("L", "S", "L", "L", "L", "L"));
  absl::MutexLock lock(&outcome.mu);
  EXPECT_EQ(outcome.processed, 2);
  EXPECT_TRUE(outcome.dropped.empty());
}

}  // namespace
}  // namespace rnnserve::batching
