// Calls whose items have different lengths, on every golden model: each item
// gets what it gets alone (and what PyTorch gives, where a golden exists),
// whether the engine pads it, chains it through segments or, for a
// bidirectional model, runs it with the items of its own length; and mixed
// lengths take a few executions, not one per length.
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/engine/dnnl_engine.h"
#include "server/engine/layer_groups.h"
#include "server/model/loader.h"
#include "tests/testing/golden.h"
#include "tests/testing/values.h"

namespace rnnserve::engine {
namespace {

using testing::GoldenCases;
using testing::GoldensDir;

// As engine_test: batched against alone differs in the last bits at most.
constexpr float kBatchTolerance = 1e-6f;
// As engine_golden_test: the engine against PyTorch.
constexpr float kGoldenTolerance = 1e-5f;

model::Model Load(const std::string& name) {
  auto model = model::LoadModel(GoldensDir() / name);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : model::Model{};
}

std::unique_ptr<Engine> MakeEngine(const model::Model& model) {
  auto engine = CreateDnnlEngine(model);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? *std::move(engine) : nullptr;
}

// 64 sequences of every length 1..28 in a scrambled order (as the
// ClassifyMixed benchmark), and a wide spread: many of length 1, a few of
// 300, one between.
std::vector<std::vector<int>> LengthSets() {
  std::vector<int> scrambled(64), wide(24, 1);
  for (int i = 0; i < 64; ++i) scrambled[i] = 1 + (i * 11) % 28;
  wide[3] = 300;
  wide[11] = 300;
  wide[20] = 150;
  return {scrambled, wide};
}

std::vector<float> Random(size_t n, std::mt19937& rng) {
  return testing::RandomValues(n, rng);
}
using testing::ExpectAllNear;

// Logits of each sequence, all in one call or each alone.
std::vector<std::vector<float>> Classify(
    Engine& engine, const std::vector<std::vector<float>>& inputs,
    const std::vector<int>& lengths, bool alone) {
  const size_t o = engine.config().output_size;
  std::vector<std::vector<float>> logits(inputs.size(), std::vector<float>(o));
  std::vector<ClassifyItem> items;
  for (size_t i = 0; i < inputs.size(); ++i) {
    items.push_back({lengths[i], inputs[i], logits[i], {}});
  }
  if (alone) {
    for (const ClassifyItem& item : items) {
      EXPECT_TRUE(engine.Classify({&item, 1}).ok());
    }
  } else {
    EXPECT_TRUE(engine.Classify(items).ok());
  }
  return logits;
}

TEST(MixedLengthTest, ClassifyEqualsOneByOneForEveryModel) {
  for (const std::string& name : GoldenCases()) {
    if (testing::IsTokenCase(name)) continue;  // engine_golden_test's.
    const model::Model model = Load(name);
    auto engine = MakeEngine(model);
    ASSERT_NE(engine, nullptr) << name;
    const size_t in = model.config.input_size;
    std::mt19937 rng(13);
    for (const std::vector<int>& lengths : LengthSets()) {
      SCOPED_TRACE(name + ", " + std::to_string(lengths.size()) + " items");
      std::vector<std::vector<float>> inputs;
      for (int len : lengths) inputs.push_back(Random(len * in, rng));
      const auto batched = Classify(*engine, inputs, lengths, false);
      const auto alone = Classify(*engine, inputs, lengths, true);
      for (size_t i = 0; i < inputs.size(); ++i) {
        ExpectAllNear(batched[i], alone[i], kBatchTolerance,
                      "sequence " + std::to_string(i) + " of length " +
                          std::to_string(lengths[i]));
      }
    }
  }
}

// A chunk per session, each from its own state; state_out aliases state_in
// as in a session.
struct Chunks {
  std::vector<std::vector<float>> inputs, states, outputs;
  std::vector<RegressItem> Items(const std::vector<int>& lengths) {
    std::vector<RegressItem> items;
    for (size_t i = 0; i < lengths.size(); ++i) {
      items.push_back(
          {lengths[i], inputs[i], states[i], states[i], outputs[i]});
    }
    return items;
  }
};

TEST(MixedLengthTest, RegressEqualsOneByOneForEveryUnidirectionalModel) {
  for (const std::string& name : GoldenCases()) {
    if (testing::IsTokenCase(name)) continue;  // engine_golden_test's.
    const model::Model model = Load(name);
    if (model.config.bidirectional) continue;
    auto engine = MakeEngine(model);
    ASSERT_NE(engine, nullptr) << name;
    const size_t in = model.config.input_size, o = model.config.output_size;
    std::mt19937 rng(17);
    for (const std::vector<int>& lengths : LengthSets()) {
      SCOPED_TRACE(name + ", " + std::to_string(lengths.size()) + " items");
      Chunks batched;
      for (int len : lengths) {
        batched.inputs.push_back(Random(len * in, rng));
        batched.states.push_back(Random(model.config.state_size(), rng));
        batched.outputs.emplace_back(len * o);
      }
      Chunks alone = batched;
      ASSERT_TRUE(engine->Regress(batched.Items(lengths)).ok());
      for (const RegressItem& item : alone.Items(lengths)) {
        ASSERT_TRUE(engine->Regress({&item, 1}).ok());
      }
      for (size_t i = 0; i < lengths.size(); ++i) {
        const std::string what = "chunk " + std::to_string(i) + " of length " +
                                 std::to_string(lengths[i]);
        ExpectAllNear(batched.outputs[i], alone.outputs[i], kBatchTolerance,
                      what + " outputs");
        ExpectAllNear(batched.states[i], alone.states[i], kBatchTolerance,
                      what + " final state");
      }
    }
  }
}

// A golden case's sequences, with long and short random sequences of our own
// around them in the same call.
struct GoldenCall {
  model::Model model;
  testing::Golden golden;
  std::vector<int> lengths;  // Golden sequences first, then the fillers.
  std::vector<std::vector<float>> inputs;
  int n = 0;  // Golden sequences.
  int t_max = 0;

  explicit GoldenCall(const std::string& name)
      : model(Load(name)),
        golden(
            testing::ReadGolden(GoldensDir() / name / "golden.safetensors")) {
    const size_t in = model.config.input_size;
    t_max = static_cast<int>(golden.shapes["inputs"][1]);
    for (int64_t len : golden.I64("lengths")) {
      const float* x = golden.F32("inputs").data() + n++ * t_max * in;
      lengths.push_back(static_cast<int>(len));
      inputs.emplace_back(x, x + len * in);
    }
    std::mt19937 rng(19);
    for (int len : {300, 1, 1, 1, 120, 1, 300, 1, 1}) {
      lengths.push_back(len);
      inputs.push_back(Random(len * in, rng));
    }
  }

  // Golden state `h` (and `c`) of sequence i, (L*D, N, H) each, in the
  // engine's layout: h of every layer, then c of every layer.
  std::vector<float> State(int i, const char* h, const char* c) const {
    const int layers = model.config.num_layers * model.config.num_directions();
    const int hidden = model.config.hidden_size;
    std::vector<float> state;
    for (const char* name : {h, c}) {
      if (!golden.has(name)) continue;
      for (int l = 0; l < layers; ++l) {
        const float* row =
            golden.F32(name).data() + (static_cast<size_t>(l) * n + i) * hidden;
        state.insert(state.end(), row, row + hidden);
      }
    }
    return state;
  }
};

TEST(MixedLengthTest, GoldenSequencesBesideWideFillersMatchPyTorch) {
  for (const std::string& name : GoldenCases()) {
    if (testing::IsTokenCase(name)) continue;  // engine_golden_test's.
    SCOPED_TRACE(name);
    const GoldenCall call(name);
    auto engine = MakeEngine(call.model);
    ASSERT_NE(engine, nullptr);
    const size_t o = call.model.config.output_size;
    if (name.find("_cls_") != std::string::npos) {
      const auto logits = Classify(*engine, call.inputs, call.lengths, false);
      for (int i = 0; i < call.n; ++i) {
        ExpectAllNear(logits[i], {call.golden.F32("logits").data() + i * o, o},
                      kGoldenTolerance, "sequence " + std::to_string(i));
      }
      continue;
    }
    Chunks chunks;
    chunks.inputs = call.inputs;
    std::mt19937 rng(23);
    for (size_t i = 0; i < call.lengths.size(); ++i) {
      chunks.states.push_back(
          static_cast<int>(i) < call.n
              ? call.State(i, "h0", "c0")
              : Random(call.model.config.state_size(), rng));
      chunks.outputs.emplace_back(call.lengths[i] * o);
    }
    ASSERT_TRUE(engine->Regress(chunks.Items(call.lengths)).ok());
    for (int i = 0; i < call.n; ++i) {
      const std::string what = "sequence " + std::to_string(i);
      ExpectAllNear(chunks.outputs[i],
                    {call.golden.F32("outputs").data() + i * call.t_max * o,
                     call.lengths[i] * o},
                    kGoldenTolerance, what + " outputs");
      ExpectAllNear(chunks.states[i], call.State(i, "h_n", "c_n"),
                    kGoldenTolerance, what + " final state");
    }
  }
}

// A sequence far longer than one execution runs (kMaxSegmentSteps in the
// engine), so it is cut and chained: it gives what it gives step by step,
// one-step chunks with the state carried, which are never cut.
TEST(MixedLengthTest, LongSequencesCutIntoPiecesEqualStepByStep) {
  for (const char* name : {"lstm_reg_3l", "gru_reg_3l_square",
                           "rnn_relu_reg_2l", "rnn_tanh_reg_1l"}) {
    SCOPED_TRACE(name);
    const model::Model model = Load(name);
    auto engine = MakeEngine(model);
    ASSERT_NE(engine, nullptr);
    const size_t in = model.config.input_size, o = model.config.output_size;
    const int len = 300;
    std::mt19937 rng(31);
    const std::vector<float> x = Random(len * in, rng);
    std::vector<float> steps(len * o), state(model.config.state_size(), 0.0f);
    for (int t = 0; t < len; ++t) {
      RegressItem item{
          1, {x.data() + t * in, in}, state, state, {steps.data() + t * o, o}};
      ASSERT_TRUE(engine->Regress({&item, 1}).ok());
    }
    std::vector<float> whole(len * o), whole_state(state.size());
    RegressItem one{len, x, {}, whole_state, whole};
    ASSERT_TRUE(engine->Regress({&one, 1}).ok());
    ExpectAllNear(whole, steps, kBatchTolerance, "outputs");
    ExpectAllNear(whole_state, state, kBatchTolerance, "final state");
    // Classify applies the same head at the last step.
    const auto logits = Classify(*engine, {x}, {len}, false);
    ExpectAllNear(logits[0], {steps.data() + (len - 1) * o, o}, kBatchTolerance,
                  "logits");
  }
}

// Parts of a sequence (a long classification run in slices): bad state
// sizes are named; a bidirectional model, which needs each sequence whole,
// refuses them.
TEST(MixedLengthTest, ClassifyPartsAreCheckedAndNeedAUnidirectionalModel) {
  const model::Model uni = Load("lstm_cls_1l");
  auto engine = MakeEngine(uni);
  ASSERT_NE(engine, nullptr);
  const size_t in = uni.config.input_size;
  std::vector<float> x(4 * in, 0.5f), state(uni.config.state_size() - 1);
  ClassifyItem part{4, x, {}, {}, {}, state};
  absl::Status status = engine->Classify({&part, 1});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("state_out has"), std::string::npos)
      << status;

  const model::Model bi = Load("lstm_cls_2l_bi");
  auto bi_engine = MakeEngine(bi);
  ASSERT_NE(bi_engine, nullptr);
  std::vector<float> y(4 * bi.config.input_size, 0.5f);
  std::vector<float> bi_state(bi.config.state_size());
  ClassifyItem bi_part{4, y, {}, {}, {}, bi_state};
  status = bi_engine->Classify({&bi_part, 1});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("bidirectional"), std::string::npos)
      << status;
}

TEST(MixedLengthTest, WarmupPreparesThePiecesOfALongRun) {
  const model::Model model = Load("rnn_tanh_reg_1l");
  auto engine = MakeEngine(model);
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->Warmup(150, 2).ok());
  const EngineStats warm = engine->stats();
  std::mt19937 rng(37);
  const size_t in = model.config.input_size;
  Classify(*engine, {Random(150 * in, rng), Random(150 * in, rng)}, {150, 150},
           false);
  EXPECT_EQ(engine->stats().plans_created, warm.plans_created);
}

// Random traffic after warm-up, as the server warms up (--warmup-steps
// 1,10,28, max batch 64): lengths 1..300 and batches 1..64, classified and
// regressed, make no plan and no primitive; a padded batch still equals its
// items one by one.
TEST(MixedLengthTest, NoShapeIsMadeAfterWarmup) {
  constexpr int kMaxBatch = 64;
  constexpr int kMaxSteps = 300;
  for (const char* name : {"lstm_cls_1l", "gru_cls_3l", "rnn_tanh_reg_1l"}) {
    SCOPED_TRACE(name);
    const model::Model model = Load(name);
    auto engine = MakeEngine(model);
    ASSERT_NE(engine, nullptr);
    for (int steps : {1, 10, 28}) {
      ASSERT_TRUE(engine->Warmup(steps, kMaxBatch).ok());
    }
    const EngineStats warm = engine->stats();
    const size_t in = model.config.input_size, o = model.config.output_size;
    std::mt19937 rng(41);
    std::uniform_int_distribution<int> batch_size(1, kMaxBatch);
    std::uniform_int_distribution<int> length(1, kMaxSteps);
    for (int call = 0; call < 12; ++call) {
      std::vector<int> lengths(batch_size(rng));
      for (int& len : lengths) len = length(rng);
      std::vector<std::vector<float>> inputs;
      for (int len : lengths) inputs.push_back(Random(len * in, rng));
      const auto batched = Classify(*engine, inputs, lengths, false);
      Chunks chunks;
      chunks.inputs = inputs;
      for (int len : lengths) {
        chunks.states.emplace_back(model.config.state_size(), 0.0f);
        chunks.outputs.emplace_back(len * o);
      }
      ASSERT_TRUE(engine->Regress(chunks.Items(lengths)).ok());
      if (call < 2) {
        const auto alone = Classify(*engine, inputs, lengths, true);
        for (size_t i = 0; i < inputs.size(); ++i) {
          ExpectAllNear(batched[i], alone[i], kBatchTolerance,
                        "sequence " + std::to_string(i));
        }
      }
    }
    EXPECT_EQ(engine->stats().plans_created, warm.plans_created);
    EXPECT_EQ(engine->stats().primitives_created, warm.primitives_created);
    EXPECT_GT(engine->stats().executions, warm.executions);
  }
}

// Executions of one call of 64 sequences of 28 lengths, per layer group.
double ExecutionsPerGroup(const std::string& name, bool regress) {
  const model::Model model = Load(name);
  auto engine = MakeEngine(model);
  const std::vector<int> lengths = LengthSets()[0];
  std::mt19937 rng(29);
  std::vector<std::vector<float>> inputs;
  for (int len : lengths) {
    inputs.push_back(Random(len * model.config.input_size, rng));
  }
  const int64_t before = engine->stats().executions;
  if (regress) {
    Chunks chunks;
    chunks.inputs = inputs;
    for (int len : lengths) {
      chunks.states.emplace_back(model.config.state_size(), 0.0f);
      chunks.outputs.emplace_back(len * model.config.output_size);
    }
    EXPECT_TRUE(engine->Regress(chunks.Items(lengths)).ok());
  } else {
    Classify(*engine, inputs, lengths, false);
  }
  const double executions = engine->stats().executions - before;
  return executions / PlanLayerGroups(model.config).size();
}

TEST(MixedLengthTest, MixedLengthsTakeAFewExecutionsNotOnePerLength) {
  // Classification of a unidirectional model pads: a few pieces, each of
  // a step bucket's length (without warm-up, powers of two only).
  for (const char* name : {"lstm_cls_1l", "gru_cls_3l", "rnn_relu_reg_2l"}) {
    EXPECT_LE(ExecutionsPerGroup(name, false), 7) << name;
  }
  // Regression chains one segment per length (exact final states), and a
  // bidirectional model runs each length apart: at most one per length.
  EXPECT_LE(ExecutionsPerGroup("lstm_reg_3l", true), 28);
  EXPECT_LE(ExecutionsPerGroup("rnn_tanh_cls_2l_bi", false), 28);
}

}  // namespace
}  // namespace rnnserve::engine
