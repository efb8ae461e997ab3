// Engine properties that need no PyTorch: batched equals alone, chunked
// equals whole, caches are reused, concurrent calls agree, bad calls are
// refused.
#include <algorithm>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/call_context.h"
#include "server/engine/dnnl_engine.h"
#include "server/engine/layer_groups.h"
#include "server/model/loader.h"
#include "tests/testing/golden.h"
#include "tests/testing/values.h"

namespace rnnserve::engine {
namespace {

using testing::GoldensDir;
using ::testing::HasSubstr;

// Results of the same sums taken in a different batch layout may differ in
// the last bits; anything real is orders of magnitude larger.
constexpr float kBatchTolerance = 1e-6f;

std::unique_ptr<Engine> MakeEngine(const std::string& golden_case,
                                   DnnlEngineOptions options = {}) {
  auto model = model::LoadModel(GoldensDir() / golden_case);
  EXPECT_TRUE(model.ok()) << model.status();
  auto engine = CreateDnnlEngine(*model, options);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return std::move(*engine);
}

std::vector<float> Random(size_t n, std::mt19937& rng) {
  return testing::RandomValues(n, rng);
}

// Classifies each of `inputs` (with `lengths`) in one call.
std::vector<float> ClassifyAll(Engine& engine,
                               const std::vector<std::vector<float>>& inputs,
                               const std::vector<int>& lengths) {
  const size_t o = engine.config().output_size;
  std::vector<float> logits(inputs.size() * o);
  std::vector<ClassifyItem> items;
  for (size_t i = 0; i < inputs.size(); ++i) {
    items.push_back({lengths[i], inputs[i], {logits.data() + i * o, o}, {}});
  }
  EXPECT_TRUE(engine.Classify(items).ok());
  return logits;
}

TEST(EngineTest, MixedLengthBatchEqualsOneByOne) {
  for (const char* name : {"lstm_cls_1l", "gru_cls_1l_bi", "gru_cls_3l"}) {
    SCOPED_TRACE(name);
    auto engine = MakeEngine(name);
    const size_t in = engine->config().input_size;
    std::mt19937 rng(7);
    std::vector<std::vector<float>> inputs;
    std::vector<int> lengths;
    for (int i = 0; i < 40; ++i) {
      lengths.push_back(1 + (i * 7) % 20);
      inputs.push_back(Random(lengths.back() * in, rng));
    }
    const std::vector<float> batched = ClassifyAll(*engine, inputs, lengths);
    const size_t o = engine->config().output_size;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::vector<float> alone =
          ClassifyAll(*engine, {inputs[i]}, {lengths[i]});
      for (size_t k = 0; k < o; ++k) {
        EXPECT_NEAR(batched[i * o + k], alone[k], kBatchTolerance)
            << "sequence " << i << " output " << k;
      }
    }
  }
}

TEST(EngineTest, ChunkedWithCarriedStateEqualsOnePass) {
  for (const char* name : {"lstm_reg_3l", "gru_reg_3l_square",
                           "rnn_relu_reg_2l", "rnn_tanh_reg_1l"}) {
    SCOPED_TRACE(name);
    auto engine = MakeEngine(name);
    const model::ModelConfig& config = engine->config();
    const size_t in = config.input_size, o = config.output_size;
    std::mt19937 rng(11);
    const int len = 37;
    const std::vector<float> x = Random(len * in, rng);
    std::vector<float> whole(len * o), state(config.state_size());
    RegressItem one{len, x, {}, state, whole};
    ASSERT_TRUE(engine->Regress({&one, 1}).ok());
    const std::vector<float> final_state = state;
    for (int chunk : {1, 3, 10}) {
      std::vector<float> parts(len * o), carried(config.state_size(), 0.0f);
      for (int t = 0; t < len; t += chunk) {
        const int steps = std::min(chunk, len - t);
        RegressItem item{steps,
                         std::span<const float>(x).subspan(t * in, steps * in),
                         carried,
                         carried,
                         {parts.data() + t * o, steps * o}};
        ASSERT_TRUE(engine->Regress({&item, 1}).ok());
      }
      for (size_t i = 0; i < parts.size(); ++i) {
        EXPECT_NEAR(parts[i], whole[i], kBatchTolerance)
            << "chunks of " << chunk << ", value " << i;
      }
      for (size_t i = 0; i < carried.size(); ++i) {
        EXPECT_NEAR(carried[i], final_state[i], kBatchTolerance)
            << "chunks of " << chunk << ", state " << i;
      }
    }
  }
}

TEST(EngineTest, ChunksOfDifferentSessionsInOneBatchStayApart) {
  auto engine = MakeEngine("lstm_reg_3l");
  const model::ModelConfig& config = engine->config();
  const size_t in = config.input_size, o = config.output_size;
  std::mt19937 rng(3);
  // Three sessions with their own states and chunk lengths, in one call.
  std::vector<int> steps = {4, 1, 4};
  std::vector<std::vector<float>> x, states, outs;
  std::vector<RegressItem> items;
  for (int s = 0; s < 3; ++s) {
    x.push_back(Random(steps[s] * in, rng));
    states.push_back(Random(config.state_size(), rng));
    outs.emplace_back(steps[s] * o);
  }
  const auto initial = states;
  for (int s = 0; s < 3; ++s) {
    items.push_back({steps[s], x[s], states[s], states[s], outs[s]});
  }
  ASSERT_TRUE(engine->Regress(items).ok());
  for (int s = 0; s < 3; ++s) {
    std::vector<float> out(steps[s] * o), state(config.state_size());
    RegressItem alone{steps[s], x[s], initial[s], state, out};
    ASSERT_TRUE(engine->Regress({&alone, 1}).ok());
    for (size_t i = 0; i < out.size(); ++i) {
      EXPECT_NEAR(outs[s][i], out[i], kBatchTolerance);
    }
    for (size_t i = 0; i < state.size(); ++i) {
      EXPECT_NEAR(states[s][i], state[i], kBatchTolerance);
    }
  }
}

TEST(EngineTest, SteadyStateCallsCreateNoPrimitive) {
  auto engine = MakeEngine("gru_cls_3l");
  const size_t in = engine->config().input_size;
  std::mt19937 rng(5);
  std::vector<std::vector<float>> inputs = {
      Random(6 * in, rng), Random(6 * in, rng), Random(2 * in, rng)};
  ClassifyAll(*engine, inputs, {6, 6, 2});
  const EngineStats first = engine->stats();
  // Two segments: steps 0-1 of all three, then 2-5 of the two of 6 steps.
  EXPECT_EQ(first.plans_created, 2);
  EXPECT_GT(first.primitives_created, 0);
  EXPECT_GT(first.weight_reorders, 0);
  for (int i = 0; i < 20; ++i) ClassifyAll(*engine, inputs, {6, 6, 2});
  const EngineStats later = engine->stats();
  EXPECT_EQ(later.plans_created, first.plans_created);
  EXPECT_EQ(later.primitives_created, first.primitives_created);
  EXPECT_EQ(later.weight_reorders, first.weight_reorders);
  EXPECT_GT(later.executions, first.executions);
}

TEST(EngineTest, LeastRecentlyUsedPlansAreDroppedBeyondTheLimit) {
  auto engine = MakeEngine("rnn_tanh_reg_1l", {.max_cached_plans = 2});
  std::vector<float> x(4), out(4), state(engine->config().state_size());
  auto run = [&](int steps) {
    RegressItem item{steps,
                     {x.data(), static_cast<size_t>(steps)},
                     {},
                     state,
                     {out.data(), static_cast<size_t>(steps)}};
    ASSERT_TRUE(engine->Regress({&item, 1}).ok());
  };
  run(1);
  run(2);
  run(1);  // Cached.
  EXPECT_EQ(engine->stats().plans_created, 2);
  run(4);  // Evicts steps=2, the least recently used.
  run(1);  // Still cached.
  EXPECT_EQ(engine->stats().plans_created, 3);
  run(2);
  EXPECT_EQ(engine->stats().plans_created, 4);
}

TEST(EngineTest, ConcurrentCallsGetTheSameAnswersAsSerialOnes) {
  auto engine = MakeEngine("lstm_cls_2l_bi");
  const size_t in = engine->config().input_size;
  std::mt19937 rng(9);
  std::vector<std::vector<std::vector<float>>> batches;
  std::vector<std::vector<int>> lengths;
  for (int b = 0; b < 8; ++b) {
    batches.emplace_back();
    lengths.emplace_back();
    for (int i = 0; i <= b; ++i) {
      lengths.back().push_back(1 + (b + i) % 9);
      batches.back().push_back(Random(lengths.back().back() * in, rng));
    }
  }
  std::vector<std::vector<float>> serial;
  for (int b = 0; b < 8; ++b) {
    serial.push_back(ClassifyAll(*engine, batches[b], lengths[b]));
  }
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      SetThreadsForThisThread(1);
      for (int round = 0; round < 25; ++round) {
        const int b = (t * 3 + round) % 8;
        if (ClassifyAll(*engine, batches[b], lengths[b]) != serial[b]) {
          ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(mismatches, ::testing::Each(0));
}

TEST(EngineTest, RefusesMalformedItems) {
  auto engine = MakeEngine("lstm_cls_1l");
  std::vector<float> x(28 * 2), logits(10), wrong(9);
  ClassifyItem zero_steps{0, {}, logits, {}};
  absl::Status s = engine->Classify({&zero_steps, 1});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("steps"));
  ClassifyItem short_input{3, x, logits, {}};
  s = engine->Classify({&short_input, 1});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("inputs has 56 floats"));
  ClassifyItem bad_logits{2, x, wrong, {}};
  s = engine->Classify({&bad_logits, 1});
  EXPECT_THAT(std::string(s.message()), HasSubstr("logits"));
}

TEST(EngineTest, BidirectionalModelsRefuseChunks) {
  auto engine = MakeEngine("gru_cls_1l_bi");
  std::vector<float> x(6), out(4), state(engine->config().state_size());
  RegressItem item{1, x, {}, state, out};
  EXPECT_EQ(engine->Regress({&item, 1}).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(WorkspaceTest, TrimFreesBuffersOnlyAboveTheLimit) {
  Workspace ws;
  ws.src.resize(1000);
  ws.layer[1].resize(1000);
  ws.scratchpad.resize(1000);
  ws.TrimAbove(100'000);
  EXPECT_EQ(ws.src.capacity(), 1000u);
  ws.TrimAbove(8999);  // 4000 + 4000 + 1000 bytes.
  EXPECT_EQ(ws.src.capacity(), 0u);
  EXPECT_EQ(ws.layer[1].capacity(), 0u);
  EXPECT_EQ(ws.scratchpad.capacity(), 0u);
}

TEST(LayerGroupsTest, LayersShareAPrimitiveOnlyWhereWidthsMatch) {
  model::ModelConfig c;
  c.input_size = 5;
  c.hidden_size = 7;
  c.num_layers = 3;
  std::vector<LayerGroup> g = PlanLayerGroups(c);
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].num_layers, 1);
  EXPECT_EQ(g[0].input_size, 5);
  EXPECT_EQ(g[1].first_layer, 1);
  EXPECT_EQ(g[1].num_layers, 2);
  EXPECT_EQ(g[1].input_size, 7);
  c.input_size = 7;
  EXPECT_EQ(PlanLayerGroups(c).size(), 1u);
  c.bidirectional = true;
  g = PlanLayerGroups(c);
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[1].input_size, 14);
}

TEST(LayerGroupsTest, GruGatesAreReorderedAndTheNBiasKeptApart) {
  // Each PyTorch gate block holds its own index, so the result shows where
  // every block went.
  model::Model m;
  m.config.cell = model::Cell::kGru;
  m.config.input_size = 1;
  m.config.hidden_size = 1;
  m.config.output_size = 1;
  m.layers.push_back({{0, 1, 2}, {10, 11, 12}, {20, 21, 22}, {30, 31, 32}});
  const GroupWeights w = ConvertGroupWeights(m, {0, 1, 1});
  // PyTorch r, z, n -> update (z), reset (r), output (n).
  EXPECT_THAT(w.weights_layer, ::testing::ElementsAre(1, 0, 2));
  EXPECT_THAT(w.weights_iter, ::testing::ElementsAre(11, 10, 12));
  EXPECT_THAT(w.bias, ::testing::ElementsAre(21 + 31, 20 + 30, 22, 32));
}

}  // namespace
}  // namespace rnnserve::engine
