// The runtime's admission: a client of long sequences is held to the
// queue's cost bound and cannot keep small calls out. The engine is a fake
// that holds the compute thread on its first batch, so what is queued is
// known exactly, with no timing.
#include "server/runtime/model_runtime.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rnnserve::runtime {
namespace {

using ::testing::HasSubstr;

constexpr int kInputSize = 28;
constexpr int kOutputSize = 10;

// Writes each item's step count into its logits; holds the first call until
// released.
class HoldingEngine : public engine::Engine {
 public:
  HoldingEngine() {
    config_.name = "fake";
    config_.input_size = kInputSize;
    config_.hidden_size = 8;
    config_.output_size = kOutputSize;
    config_.task = model::Task::kClassification;
  }
  absl::Status Classify(std::span<const engine::ClassifyItem> items) override {
    if (!first_done_.HasBeenNotified()) {
      first_done_.Notify();
      entered_.Notify();
      release_.WaitForNotification();
    }
    for (const engine::ClassifyItem& item : items) {
      for (float& v : item.logits) v = static_cast<float>(item.steps);
    }
    return absl::OkStatus();
  }
  absl::Status Regress(std::span<const engine::RegressItem>) override {
    return absl::UnimplementedError("not a regression model");
  }
  absl::Status Warmup(int, int) override { return absl::OkStatus(); }
  const model::ModelConfig& config() const override { return config_; }
  engine::EngineStats stats() const override { return {}; }

  void WaitUntilHeld() { entered_.WaitForNotification(); }
  void Release() { release_.Notify(); }

 private:
  model::ModelConfig config_;
  absl::Notification first_done_;
  absl::Notification entered_;
  absl::Notification release_;
};

// Counts how calls end, in the order they end.
struct Answers {
  absl::Mutex mu;
  std::vector<absl::Status> statuses ABSL_GUARDED_BY(mu);
  std::vector<int> steps ABSL_GUARDED_BY(mu);  // Of each call's first item.
};

// A call of `sequences` sequences of `steps` steps, all reading `input`.
class Call : public ClassifyTask {
 public:
  Call(int sequences, int steps, const std::vector<float>& input,
       Answers* answers)
      : logits_(sequences * kOutputSize), answers_(answers) {
    for (int i = 0; i < sequences; ++i) {
      items.push_back({steps,
                       {input.data(), static_cast<size_t>(steps) * kInputSize},
                       {logits_.data() + i * kOutputSize, kOutputSize},
                       {}});
    }
  }
  void Done(absl::Status status) override {
    absl::MutexLock lock(&answers_->mu);
    answers_->statuses.push_back(std::move(status));
    answers_->steps.push_back(items[0].steps);
  }

 private:
  std::vector<float> logits_;
  Answers* answers_;
};

std::unique_ptr<ClassifyTask> MakeCall(int sequences, int steps,
                                       const std::vector<float>& input,
                                       Answers* answers) {
  return std::make_unique<Call>(sequences, steps, input, answers);
}

TEST(ModelRuntimeTest, LongSequencesAreBoundedByStepsWhileASmallCallGetsIn) {
  constexpr int kSteps = 10000;  // The default --max-sequence-length.
  const std::vector<float> input(kSteps * kInputSize, 0.5f);
  Answers answers;
  FakeClock clock;
  auto engine = std::make_unique<HoldingEngine>();
  HoldingEngine& held = *engine;
  batching::Scheduler scheduler({1, nullptr}, clock);
  // The default queue options: what a server gets without flags.
  ModelRuntime runtime(std::move(engine), batching::QueueOptions(), scheduler,
                       clock, nullptr);
  scheduler.Start();

  // A heavy client: calls of 32 sequences of 10,000 steps, each within
  // every per-call limit. The first takes the compute thread.
  auto heavy = [&] { return MakeCall(32, kSteps, input, &answers); };
  auto first = heavy();
  ASSERT_TRUE(runtime.Classify(first).ok());
  held.WaitUntilHeld();
  int admitted = 1;
  absl::Status refused;
  for (int i = 0; i < 10 && refused.ok(); ++i) {
    auto call = heavy();
    refused = runtime.Classify(call);
    if (refused.ok()) {
      ++admitted;
    } else {
      ASSERT_NE(call, nullptr);  // A refused call stays with its caller.
    }
  }
  // About a second of compute may wait: 3 such calls (960,000 steps), not
  // the 32 that 1024 queued sequences would allow.
  EXPECT_EQ(admitted, 4);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("fake/Classify is full"));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("--max-queued-steps"));

  // Another client's one image still gets in.
  auto small = MakeCall(1, 28, input, &answers);
  EXPECT_TRUE(runtime.Classify(small).ok());

  held.Release();
  scheduler.Stop();
  absl::MutexLock lock(&answers.mu);
  ASSERT_EQ(answers.statuses.size(), 5u);
  for (const absl::Status& s : answers.statuses) EXPECT_TRUE(s.ok()) << s;
}

TEST(ModelRuntimeTest, AShortCallIsAnsweredBetweenTheSlicesOfALongOne) {
  constexpr int kSteps = 10000;
  const std::vector<float> input(kSteps * kInputSize, 0.5f);
  Answers answers;
  FakeClock clock;
  auto engine = std::make_unique<HoldingEngine>();
  HoldingEngine& held = *engine;
  batching::Scheduler scheduler({1, nullptr}, clock);
  batching::QueueOptions queue;
  queue.slice_steps = 2048;
  ModelRuntime runtime(std::move(engine), queue, scheduler, clock, nullptr);
  scheduler.Start();

  auto heavy = MakeCall(32, kSteps, input, &answers);
  ASSERT_TRUE(runtime.Classify(heavy).ok());
  held.WaitUntilHeld();  // Its first slice runs.
  auto small = MakeCall(1, 28, input, &answers);
  ASSERT_TRUE(runtime.Classify(small).ok());
  held.Release();
  scheduler.Stop();
  absl::MutexLock lock(&answers.mu);
  // Without slices the small call waited for all 320,000 steps.
  EXPECT_THAT(answers.steps, ::testing::ElementsAre(28, kSteps));
  for (const absl::Status& s : answers.statuses) EXPECT_TRUE(s.ok()) << s;
}

}  // namespace
}  // namespace rnnserve::runtime
