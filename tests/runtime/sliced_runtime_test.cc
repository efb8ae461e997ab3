// Long work run in slices (QueueOptions::slice_steps) gives what one pass
// gives: through the real scheduler and engine, on every golden model, each
// sequence's logits (or each chunk's outputs and final state) equal
// PyTorch's, with slices so small that every sequence is cut at every step
// or two, beside long fillers in the same calls.
#include <algorithm>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "server/batching/scheduler.h"
#include "server/common/clock.h"
#include "server/engine/dnnl_engine.h"
#include "server/model/loader.h"
#include "server/runtime/model_runtime.h"
#include "tests/testing/golden.h"
#include "tests/testing/values.h"

namespace rnnserve::runtime {
namespace {

using testing::ExpectAllNear;
using testing::GoldenCases;
using testing::GoldensDir;
using testing::RandomValues;

// As the engine's golden tests: against PyTorch, and against one pass of
// our own engine.
constexpr float kGoldenTolerance = 1e-5f;
constexpr float kBatchTolerance = 1e-6f;
// Slices of 4 steps in all: a batch of several sequences runs 1 or 2 steps
// of each before the queue is looked at again.
constexpr int64_t kSliceSteps = 4;

// Counts answers; each must be OK.
struct Answers {
  absl::Mutex mu;
  int count ABSL_GUARDED_BY(mu) = 0;
  std::vector<absl::Status> failures ABSL_GUARDED_BY(mu);
  void Add(absl::Status status) {
    absl::MutexLock lock(&mu);
    ++count;
    if (!status.ok()) failures.push_back(std::move(status));
  }
  void WaitFor(int n) {
    absl::MutexLock lock(&mu);
    target = n;
    mu.Await(absl::Condition(this, &Answers::Reached));
  }
  bool Reached() const ABSL_SHARED_LOCKS_REQUIRED(mu) {
    return count >= target;
  }
  int target ABSL_GUARDED_BY(mu) = 0;
};

// A task of kind `Base` whose answer goes to `answers`.
template <typename Base>
class Answered : public Base {
 public:
  explicit Answered(Answers* answers) : answers_(answers) {}
  void Done(absl::Status status) override { answers_->Add(std::move(status)); }

 private:
  Answers* answers_;
};
using Call = Answered<ClassifyTask>;
using Chunk = Answered<RegressTask>;

// A golden model behind a runtime that slices.
struct Served {
  model::Model model;
  testing::Golden golden;
  SteadyClock clock;
  batching::Scheduler scheduler{{1, nullptr}, clock};
  engine::Engine* engine = nullptr;  // Owned by the runtime.
  std::unique_ptr<ModelRuntime> runtime;
  int n = 0;      // Golden sequences.
  int t_max = 0;  // Their padded length in the golden file.

  explicit Served(const std::string& name) {
    auto loaded = model::LoadModel(GoldensDir() / name);
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    model = *std::move(loaded);
    golden = testing::ReadGolden(GoldensDir() / name / "golden.safetensors");
    n = static_cast<int>(golden.I64("lengths").size());
    t_max = static_cast<int>(golden.shapes["inputs"][1]);
    auto made = engine::CreateDnnlEngine(model);
    EXPECT_TRUE(made.ok()) << made.status();
    engine = made->get();
    batching::QueueOptions queue;
    queue.slice_steps = kSliceSteps;
    runtime = std::make_unique<ModelRuntime>(*std::move(made), queue, scheduler,
                                             clock, nullptr);
    scheduler.Start();
  }
  ~Served() { scheduler.Stop(); }

  int length(int i) const { return static_cast<int>(golden.I64("lengths")[i]); }
  std::span<const float> input(int i) const {
    const size_t in = model.config.input_size;
    return {golden.F32("inputs").data() + i * t_max * in, length(i) * in};
  }
};

TEST(SlicedRuntimeTest, ClassifyInSlicesMatchesPyTorch) {
  for (const std::string& name : GoldenCases()) {
    if (testing::IsTokenCase(name)) continue;  // engine_golden_test's.
    if (name.find("_cls_") == std::string::npos) continue;
    SCOPED_TRACE(name);
    Served s(name);
    const size_t in = s.model.config.input_size;
    const size_t o = s.model.config.output_size;
    std::mt19937 rng(43);
    // Fillers of our own, long and short, expected as one pass gives them.
    const std::vector<int> filler_lengths = {300, 1, 120, 2};
    std::vector<std::vector<float>> fillers;
    for (int len : filler_lengths)
      fillers.push_back(RandomValues(len * in, rng));
    std::vector<std::vector<float>> whole(fillers.size(),
                                          std::vector<float>(o));
    for (size_t f = 0; f < fillers.size(); ++f) {
      engine::ClassifyItem item{filler_lengths[f], fillers[f], whole[f], {}};
      ASSERT_TRUE(s.engine->Classify({&item, 1}).ok());
    }
    const int64_t executions_before = s.engine->stats().executions;

    // Each golden sequence as a call of its own, and all of them again in
    // one call with the fillers.
    Answers answers;
    std::vector<std::vector<float>> alone(s.n, std::vector<float>(o));
    std::vector<std::vector<float>> probabilities(s.n, std::vector<float>(o));
    std::vector<std::vector<float>> together(s.n + fillers.size(),
                                             std::vector<float>(o));
    for (int i = 0; i < s.n; ++i) {
      std::unique_ptr<ClassifyTask> call = std::make_unique<Call>(&answers);
      call->items.push_back(
          {s.length(i), s.input(i), alone[i], probabilities[i]});
      ASSERT_TRUE(s.runtime->Classify(call).ok());
    }
    std::unique_ptr<ClassifyTask> big = std::make_unique<Call>(&answers);
    for (int i = 0; i < s.n; ++i) {
      big->items.push_back({s.length(i), s.input(i), together[i], {}});
    }
    for (size_t f = 0; f < fillers.size(); ++f) {
      big->items.push_back(
          {filler_lengths[f], fillers[f], together[s.n + f], {}});
    }
    ASSERT_TRUE(s.runtime->Classify(big).ok());
    answers.WaitFor(s.n + 1);
    {
      absl::MutexLock lock(&answers.mu);
      ASSERT_TRUE(answers.failures.empty()) << answers.failures[0];
    }
    for (int i = 0; i < s.n; ++i) {
      const std::span<const float> want(s.golden.F32("logits").data() + i * o,
                                        o);
      const std::span<const float> want_p(
          s.golden.F32("probabilities").data() + i * o, o);
      const std::string what = "golden sequence " + std::to_string(i);
      ExpectAllNear(alone[i], want, kGoldenTolerance, what + " alone");
      ExpectAllNear(probabilities[i], want_p, kGoldenTolerance,
                    what + " probabilities");
      ExpectAllNear(together[i], want, kGoldenTolerance, what + " in one call");
    }
    for (size_t f = 0; f < fillers.size(); ++f) {
      ExpectAllNear(
          together[s.n + f], whole[f], kBatchTolerance,
          "filler of " + std::to_string(filler_lengths[f]) + " steps");
    }
    // The calls ran in slices: a few steps at a time, so well over a
    // hundred executions (in one pass the big call is under 20 per layer
    // group: five 64-step pieces of the 300-step filler and a few more).
    const int64_t executions = s.engine->stats().executions - executions_before;
    if (!s.model.config.bidirectional) {
      EXPECT_GT(executions, 100);
    }
  }
}

TEST(SlicedRuntimeTest, ChunksInSlicesMatchPyTorchAndCarryTheirState) {
  for (const std::string& name : GoldenCases()) {
    if (testing::IsTokenCase(name)) continue;  // engine_golden_test's.
    if (name.find("_reg_") == std::string::npos) continue;
    SCOPED_TRACE(name);
    Served s(name);
    const model::ModelConfig& config = s.model.config;
    const size_t o = config.output_size;
    const int layers = config.num_layers;
    const size_t hidden = config.hidden_size;
    // State i in the engine's layout: h of every layer, then c.
    const auto state = [&](int i, const char* h, const char* c) {
      std::vector<float> out;
      for (const char* t : {h, c}) {
        if (!s.golden.has(t)) continue;
        for (int l = 0; l < layers; ++l) {
          const float* row = s.golden.F32(t).data() + (l * s.n + i) * hidden;
          out.insert(out.end(), row, row + hidden);
        }
      }
      return out;
    };
    Answers answers;
    std::vector<std::vector<float>> outputs(s.n), states(s.n);
    std::vector<std::vector<float>> states_in(s.n);
    for (int i = 0; i < s.n; ++i) {
      outputs[i].resize(s.length(i) * o);
      states_in[i] = state(i, "h0", "c0");
      states[i].resize(config.state_size());
      std::unique_ptr<RegressTask> chunk = std::make_unique<Chunk>(&answers);
      chunk->item = {s.length(i), s.input(i), states_in[i], states[i],
                     outputs[i]};
      ASSERT_TRUE(s.runtime->Regress(chunk).ok());
    }
    answers.WaitFor(s.n);
    {
      absl::MutexLock lock(&answers.mu);
      ASSERT_TRUE(answers.failures.empty()) << answers.failures[0];
    }
    for (int i = 0; i < s.n; ++i) {
      const std::string what = "sequence " + std::to_string(i);
      ExpectAllNear(
          outputs[i],
          {s.golden.F32("outputs").data() + i * s.t_max * o, s.length(i) * o},
          kGoldenTolerance, what + " outputs");
      ExpectAllNear(states[i], state(i, "h_n", "c_n"), kGoldenTolerance,
                    what + " final state");
    }
  }
}

}  // namespace
}  // namespace rnnserve::runtime
