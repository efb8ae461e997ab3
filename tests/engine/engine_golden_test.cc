// The engine against PyTorch: every golden case of tests/goldens, run as one
// mixed-length batch, one sequence at a time, and (regression) in chunks
// with the state carried.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/engine/dnnl_engine.h"
#include "server/model/loader.h"
#include "tests/testing/golden.h"

namespace rnnserve::engine {
namespace {

using testing::Golden;
using testing::GoldenCases;
using testing::GoldensDir;
using testing::ReadGolden;

// PyTorch (OpenBLAS) and oneDNN sum the same products in different orders.
// In float32 each sum of k terms of magnitude ~1 carries a rounding error of
// about k * 6e-8; the goldens' widest sums have ~100 terms, repeated over at
// most 12 steps and 3 layers, and every value stays below 20 (the golden
// generator checks it). That bounds honest differences near 1e-6; 1e-5
// leaves a margin of ten, while a wrong gate, bias or layout is off by 1e-2
// or more.
constexpr float kTolerance = 1e-5f;

void ExpectNear(const float* got, const float* want, size_t n,
                const std::string& what) {
  float worst = 0.0f;
  size_t where = 0;
  for (size_t i = 0; i < n; ++i) {
    const float d = std::fabs(got[i] - want[i]);
    if (!(d <= worst)) {
      worst = d;
      where = i;
    }
  }
  EXPECT_LE(worst, kTolerance) << what << ": worst at " << where << ", got "
                               << got[where] << ", PyTorch " << want[where];
}

// One golden case: its model, engine and expected numbers.
struct Case {
  model::Model model;
  std::unique_ptr<Engine> engine;
  Golden golden;
  int n = 0;      // Sequences.
  int t_max = 0;  // Padded length in the golden.
  std::vector<int> lengths;

  const model::ModelConfig& config() const { return model.config; }
  bool tokens() const { return golden.has("tokens"); }
  // Steps [from, from + steps) of sequence i's float inputs (all its own
  // steps for steps < 0); empty for a token case.
  std::span<const float> Inputs(int i, int from = 0, int steps = -1) const {
    if (tokens()) return {};
    const size_t in = config().input_size;
    if (steps < 0) steps = lengths[i] - from;
    return {golden.F32("inputs").data() + (i * t_max + from) * in, steps * in};
  }
  // The same steps of sequence i's token ids; empty for a float case.
  std::span<const int64_t> Tokens(int i, int from = 0, int steps = -1) const {
    if (!tokens()) return {};
    if (steps < 0) steps = lengths[i] - from;
    return {golden.I64("tokens").data() + i * t_max + from,
            static_cast<size_t>(steps)};
  }
};

Case LoadCase(const std::string& name) {
  Case c;
  auto model = model::LoadModel(GoldensDir() / name);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return c;
  c.model = std::move(*model);
  auto engine = CreateDnnlEngine(c.model);
  EXPECT_TRUE(engine.ok()) << engine.status();
  if (engine.ok()) c.engine = std::move(*engine);
  c.golden = ReadGolden(GoldensDir() / name / "golden.safetensors");
  for (int64_t len : c.golden.I64("lengths")) c.lengths.push_back(len);
  c.n = static_cast<int>(c.lengths.size());
  c.t_max =
      static_cast<int>(c.golden.shapes[c.tokens() ? "tokens" : "inputs"][1]);
  return c;
}

bool IsClassification(const std::string& name) {
  return name.find("_cls_") != std::string::npos;
}

std::vector<std::string> CasesWhere(bool classification) {
  std::vector<std::string> out;
  for (const std::string& name : GoldenCases()) {
    if (IsClassification(name) == classification) out.push_back(name);
  }
  return out;
}

TEST(GoldenCasesTest, EveryCaseIsCovered) {
  const std::vector<std::string> all = GoldenCases();
  EXPECT_EQ(all.size(), 23u);
  for (const std::string& name : all) {
    EXPECT_TRUE(IsClassification(name) ||
                name.find("_reg_") != std::string::npos)
        << name;
  }
}

class ClassificationGoldenTest : public ::testing::TestWithParam<std::string> {
};

// Runs `indices` as one call and checks each against PyTorch.
void CheckClassify(const Case& c, const std::vector<int>& indices) {
  const size_t o = c.config().output_size;
  std::vector<float> logits(indices.size() * o), probs(indices.size() * o);
  std::vector<ClassifyItem> items;
  for (size_t k = 0; k < indices.size(); ++k) {
    const int i = indices[k];
    items.push_back({c.lengths[i],
                     c.Inputs(i),
                     {logits.data() + k * o, o},
                     {probs.data() + k * o, o}});
    items.back().tokens = c.Tokens(i);
  }
  ASSERT_TRUE(c.engine->Classify(items).ok());
  for (size_t k = 0; k < indices.size(); ++k) {
    const int i = indices[k];
    const std::string what = "sequence " + std::to_string(i) + " (length " +
                             std::to_string(c.lengths[i]) + ")";
    ExpectNear(logits.data() + k * o, c.golden.F32("logits").data() + i * o, o,
               what + " logits");
    ExpectNear(probs.data() + k * o,
               c.golden.F32("probabilities").data() + i * o, o,
               what + " probabilities");
  }
}

TEST_P(ClassificationGoldenTest, MixedLengthBatchMatchesPyTorch) {
  Case c = LoadCase(GetParam());
  ASSERT_NE(c.engine, nullptr);
  std::vector<int> all(c.n);
  for (int i = 0; i < c.n; ++i) all[i] = i;
  CheckClassify(c, all);
}

TEST_P(ClassificationGoldenTest, EachSequenceAloneMatchesPyTorch) {
  Case c = LoadCase(GetParam());
  ASSERT_NE(c.engine, nullptr);
  for (int i = 0; i < c.n; ++i) CheckClassify(c, {i});
}

// Every sequence in parts of `part` steps, all sequences in each call, each
// part starting from the state (and any readout accumulator) the one before
// it left: as the runtime slices long calls. Unidirectional models only.
TEST_P(ClassificationGoldenTest, PartsWithCarriedStateMatchPyTorch) {
  Case c = LoadCase(GetParam());
  ASSERT_NE(c.engine, nullptr);
  if (c.config().bidirectional) GTEST_SKIP() << "whole sequences only";
  const size_t o = c.config().output_size;
  const size_t state = c.config().classify_state_size();
  for (int part : {1, 2, 5}) {
    std::vector<float> logits(c.n * o), probs(c.n * o), carried(c.n * state);
    for (int done = 0; done < c.t_max; done += part) {
      std::vector<ClassifyItem> items;
      for (int i = 0; i < c.n; ++i) {
        if (c.lengths[i] <= done) continue;
        const int steps = std::min(part, c.lengths[i] - done);
        ClassifyItem item{steps, c.Inputs(i, done, steps), {}, {}};
        item.tokens = c.Tokens(i, done, steps);
        const std::span<float> own(carried.data() + i * state, state);
        if (done > 0) item.state_in = own;
        if (done + steps < c.lengths[i]) {
          item.state_out = own;
        } else {
          item.logits = {logits.data() + i * o, o};
          item.probabilities = {probs.data() + i * o, o};
        }
        items.push_back(item);
      }
      ASSERT_TRUE(c.engine->Classify(items).ok());
    }
    for (int i = 0; i < c.n; ++i) {
      const std::string what = "sequence " + std::to_string(i) +
                               " in parts of " + std::to_string(part);
      ExpectNear(logits.data() + i * o, c.golden.F32("logits").data() + i * o,
                 o, what + " logits");
      ExpectNear(probs.data() + i * o,
                 c.golden.F32("probabilities").data() + i * o, o,
                 what + " probabilities");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Goldens, ClassificationGoldenTest,
                         ::testing::ValuesIn(CasesWhere(true)));

class RegressionGoldenTest : public ::testing::TestWithParam<std::string> {};

// Sequence i's initial state from h0 (L*D, N, H) and c0, in the engine's
// layout: h of every layer, then c of every layer.
std::vector<float> InitialState(const Case& c, int i, const char* h,
                                const char* cell) {
  const int layers = c.config().num_layers * c.config().num_directions();
  const int hidden = c.config().hidden_size;
  std::vector<float> state;
  for (const char* name : {h, cell}) {
    if (!c.golden.has(name)) continue;
    const std::vector<float>& all = c.golden.F32(name);
    for (int l = 0; l < layers; ++l) {
      const float* row =
          all.data() + (static_cast<size_t>(l) * c.n + i) * hidden;
      state.insert(state.end(), row, row + hidden);
    }
  }
  return state;
}

// Runs sequence i from its h0/c0 in chunks of `chunk` steps (all at once
// for 0), carrying the state, and checks outputs and final state.
void CheckRegress(const Case& c, int i, int chunk) {
  const int len = c.lengths[i];
  const size_t o = c.config().output_size;
  std::vector<float> state = InitialState(c, i, "h0", "c0");
  ASSERT_EQ(state.size(), static_cast<size_t>(c.config().state_size()));
  std::vector<float> outputs(len * o);
  const int step = chunk == 0 ? len : chunk;
  for (int t = 0; t < len; t += step) {
    const int steps = std::min(step, len - t);
    RegressItem item{steps,
                     c.Inputs(i, t, steps),
                     state,
                     state,
                     {outputs.data() + t * o, steps * o},
                     c.Tokens(i, t, steps)};
    ASSERT_TRUE(c.engine->Regress({&item, 1}).ok());
  }
  const std::string what =
      "sequence " + std::to_string(i) + " in chunks of " + std::to_string(step);
  ExpectNear(outputs.data(), c.golden.F32("outputs").data() + i * c.t_max * o,
             len * o, what + " outputs");
  const std::vector<float> final_state = InitialState(c, i, "h_n", "c_n");
  ExpectNear(state.data(), final_state.data(), state.size(),
             what + " final state");
}

TEST_P(RegressionGoldenTest, MixedLengthBatchMatchesPyTorch) {
  Case c = LoadCase(GetParam());
  ASSERT_NE(c.engine, nullptr);
  const size_t o = c.config().output_size;
  std::vector<std::vector<float>> states(c.n), outputs(c.n);
  std::vector<RegressItem> items;
  for (int i = 0; i < c.n; ++i) {
    states[i] = InitialState(c, i, "h0", "c0");
    outputs[i].resize(c.lengths[i] * o);
    items.push_back({c.lengths[i], c.Inputs(i), states[i], states[i],
                     outputs[i], c.Tokens(i)});
  }
  ASSERT_TRUE(c.engine->Regress(items).ok());
  for (int i = 0; i < c.n; ++i) {
    ExpectNear(outputs[i].data(),
               c.golden.F32("outputs").data() + i * c.t_max * o,
               outputs[i].size(), "outputs of " + std::to_string(i));
    const std::vector<float> want = InitialState(c, i, "h_n", "c_n");
    ExpectNear(states[i].data(), want.data(), want.size(),
               "final state of " + std::to_string(i));
  }
}

TEST_P(RegressionGoldenTest, EachSequenceAloneMatchesPyTorch) {
  Case c = LoadCase(GetParam());
  ASSERT_NE(c.engine, nullptr);
  for (int i = 0; i < c.n; ++i) CheckRegress(c, i, 0);
}

TEST_P(RegressionGoldenTest, ChunksWithCarriedStateMatchPyTorch) {
  Case c = LoadCase(GetParam());
  ASSERT_NE(c.engine, nullptr);
  for (int chunk : {1, 2, 5}) {
    for (int i = 0; i < c.n; ++i) CheckRegress(c, i, chunk);
  }
}

INSTANTIATE_TEST_SUITE_P(Goldens, RegressionGoldenTest,
                         ::testing::ValuesIn(CasesWhere(false)));

}  // namespace
}  // namespace rnnserve::engine

namespace rnnserve::engine {
namespace {

// An embedding model takes token ids in [0, num_embeddings), one per step,
// and no float inputs; a float model takes no token ids.
TEST(TokenInputTest, BadTokenItemsAreRefusedNamingTheField) {
  Case c = LoadCase("emb_lstm_cls_1l_pad");
  ASSERT_NE(c.engine, nullptr);
  std::vector<float> logits(c.config().output_size);
  const std::vector<int64_t> ids = {1, 30, 2};
  ClassifyItem item{3, {}, logits, {}};
  item.tokens = ids;
  absl::Status status = c.engine->Classify({&item, 1});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "Classify item 0: tokens[1] 30 is outside the vocabulary [0, 30)");
  item.steps = 2;
  status = c.engine->Classify({&item, 1});
  EXPECT_EQ(status.message(), "Classify item 0: tokens has 3 ids, expected 2");
  const std::vector<float> floats(3 * c.config().input_size);
  item = {3, floats, logits, {}};
  status = c.engine->Classify({&item, 1});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);

  Case f = LoadCase("lstm_cls_1l");
  ASSERT_NE(f.engine, nullptr);
  std::vector<float> f_logits(f.config().output_size);
  ClassifyItem token_item{1, f.Inputs(0, 0, 1), f_logits, {}};
  const int64_t id = 0;
  token_item.tokens = {&id, 1};
  status = f.engine->Classify({&token_item, 1});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("reads float inputs, not token ids"),
            std::string::npos)
      << status;
}

// The padding row takes part as PyTorch's nn.Embedding uses it: as stored.
TEST(TokenInputTest, PaddingIdInsideASequenceIsLookedUp) {
  Case c = LoadCase("emb_lstm_cls_1l_pad");
  ASSERT_NE(c.engine, nullptr);
  ASSERT_EQ(c.config().embedding.padding_idx, 0);
  ASSERT_EQ(c.Tokens(0)[3], 0);  // The golden puts it there.
  CheckClassify(c, {0});
}

}  // namespace
}  // namespace rnnserve::engine
