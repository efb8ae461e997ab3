#include "server/batching/scheduler.h"

#include <atomic>
#include <memory>
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
};

class TestTask : public Task {
 public:
  TestTask(int size, Outcome* outcome, bool cancelled = false)
      : size_(size), outcome_(outcome), cancelled_(cancelled) {}
  int size() const override { return size_; }
  bool cancelled() const override { return cancelled_; }
  void Drop(absl::Status why) override {
    absl::MutexLock lock(&outcome_->mu);
    outcome_->dropped.push_back(why.code());
  }

 private:
  int size_;
  Outcome* outcome_;
  bool cancelled_;
};

// Records the item counts of the batches it receives; can hold the compute
// thread on the first batch until released.
class Recorder {
 public:
  Processor processor() {
    return [this](Batch batch) {
      int items = 0;
      for (auto& task : batch) items += task->size();
      {
        absl::MutexLock lock(&mu_);
        batches_.push_back(items);
        tasks_ += static_cast<int>(batch.size());
      }
      if (hold_first_ && first_.exchange(false)) {
        entered_.Notify();
        release_.WaitForNotification();
      }
    };
  }
  void HoldFirstBatch() { hold_first_ = true; }
  void WaitUntilHeld() { entered_.WaitForNotification(); }
  void Release() { release_.Notify(); }

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
  bool hold_first_ = false;
  std::atomic<bool> first_{true};
  absl::Notification entered_;
  absl::Notification release_;
};

std::unique_ptr<Task> MakeTask(int size, Outcome* outcome,
                               bool cancelled = false) {
  return std::make_unique<TestTask>(size, outcome, cancelled);
}

TEST(SchedulerTest, TasksQueuedWhileBusyRunAsOneBatch) {
  FakeClock clock;
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  recorder.HoldFirstBatch();
  Queue* queue = scheduler.AddQueue("q", {64, absl::ZeroDuration(), 1024},
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
  Queue* queue = scheduler.AddQueue("q", {4, absl::ZeroDuration(), 1024},
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
  Queue* queue = scheduler.AddQueue("q", {4, absl::ZeroDuration(), 1024},
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
  Queue* queue = scheduler.AddQueue("q", {4, absl::ZeroDuration(), 3},
                                    recorder.processor());
  auto a = MakeTask(2, &outcome);
  ASSERT_TRUE(queue->Schedule(a).ok());
  auto b = MakeTask(2, &outcome);
  const absl::Status status = queue->Schedule(b);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("full"));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->size(), 2);
  EXPECT_EQ(queue->queued_items(), 2);
}

TEST(SchedulerTest, CallersThatGaveUpDoNotKeepLiveOnesOutOfAFullQueue) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  Recorder recorder;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);  // Not started: nothing drains.
  Queue* queue = scheduler.AddQueue("q", {4, absl::ZeroDuration(), 3},
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
  Queue* queue = scheduler.AddQueue("q", {64, absl::ZeroDuration(), 1024},
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
  Queue* queue = scheduler.AddQueue("q", {4, absl::Seconds(1), 1024},
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
  Queue* queue =
      scheduler.AddQueue("q", {2, absl::Hours(1), 1024}, recorder.processor());
  scheduler.Start();
  auto task = MakeTask(1, &outcome);
  ASSERT_TRUE(queue->Schedule(task).ok());
  scheduler.Stop();
  EXPECT_THAT(recorder.batches(), ElementsAre(1));
  auto late = MakeTask(1, &outcome);
  EXPECT_EQ(queue->Schedule(late).code(), absl::StatusCode::kUnavailable);
}

TEST(SchedulerTest, OldestReadyQueueIsServedFirst) {
  FakeClock clock;
  std::vector<std::string> order;
  absl::Mutex mu;
  Outcome outcome;
  Scheduler scheduler({1, nullptr}, clock);
  auto record = [&](std::string name) {
    return [&, name](Batch) {
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

}  // namespace
}  // namespace rnnserve::batching
