// Per-step classification on a stream (config "output_activation"): chunked
// RegressChunk calls answer PyTorch's per-step probabilities, top_k lists
// each step's best classes with their labels, a replayed chunk lists them
// again, and top_k is refused for a model whose outputs are not classes.
#include <algorithm>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/test_server.h"

namespace rnnserve {
namespace {

using testing::ContextWithDeadline;
using testing::Golden;
using testing::GoldensDir;
using ::testing::HasSubstr;
using testing::ReadGolden;
using testing::TestServer;

// See tests/engine/engine_golden_test.cc for why 1e-5 against PyTorch.
constexpr float kPyTorchTolerance = 1e-5f;
constexpr int kSequence = 2;  // A 12-step sequence of the goldens.

// One golden case's sequence kSequence and what a new session answers.
struct StepCase {
  std::string name;
  int inputs = 0, outputs = 0, steps = 0;
  std::vector<std::string> labels;
  std::vector<float> x, want;  // (steps, inputs), (steps, outputs)

  StepCase(std::string case_name, std::vector<std::string> case_labels)
      : name(std::move(case_name)), labels(std::move(case_labels)) {
    const Golden g = ReadGolden(GoldensDir() / name / "golden.safetensors");
    const std::vector<int64_t>& lengths = g.I64("lengths");
    const int n = static_cast<int>(lengths.size());
    const int t_max =
        static_cast<int>(*std::max_element(lengths.begin(), lengths.end()));
    steps = static_cast<int>(lengths[kSequence]);
    inputs = static_cast<int>(g.F32("inputs").size()) / (n * t_max);
    outputs = static_cast<int>(g.F32("outputs_from_zero").size()) / (n * t_max);
    const float* in = g.F32("inputs").data() + kSequence * t_max * inputs;
    x.assign(in, in + steps * inputs);
    const float* out =
        g.F32("outputs_from_zero").data() + kSequence * t_max * outputs;
    want.assign(out, out + steps * outputs);
  }

  v1::RegressRequest Chunk(int from, int count, const std::string& token,
                           uint32_t top_k) const {
    v1::RegressRequest request;
    request.set_model(name);
    request.set_session_token(token);
    request.set_steps(count);
    request.mutable_values()->Add(x.begin() + from * inputs,
                                  x.begin() + (from + count) * inputs);
    request.set_top_k(top_k);
    request.set_expected_first_step(from);
    return request;
  }

  // Step t's classes by the golden probability, best first (ties: lower
  // index first).
  std::vector<int> Order(int t) const {
    std::vector<int> order(outputs);
    std::iota(order.begin(), order.end(), 0);
    const float* p = want.data() + t * outputs;
    std::stable_sort(order.begin(), order.end(),
                     [p](int a, int b) { return p[a] > p[b]; });
    return order;
  }
};

class StepClassesTest : public ::testing::Test {
 protected:
  StepClassesTest()
      : server_(testing::LoadModels({"tests/goldens/gru_reg_2l_softmax",
                                     "tests/goldens/lstm_reg_1l_sigmoid",
                                     "models/sine_rnn"})) {}

  // Checks one response's step_top (from first_step on) against the golden.
  static void ExpectTops(const StepCase& c, const v1::RegressResponse& r,
                         int first, uint32_t k) {
    ASSERT_EQ(r.step_top_size(), static_cast<int>(r.steps()));
    for (int s = 0; s < r.step_top_size(); ++s) {
      const std::vector<int> order = c.Order(first + s);
      const v1::StepTop& top = r.step_top(s);
      ASSERT_EQ(top.top_size(), static_cast<int>(k)) << "step " << first + s;
      for (int j = 0; j < top.top_size(); ++j) {
        const int index = order[j];
        EXPECT_EQ(top.top(j).index(), static_cast<uint32_t>(index));
        EXPECT_EQ(top.top(j).label(), c.labels[index]);
        EXPECT_NEAR(top.top(j).probability(),
                    c.want[(first + s) * c.outputs + index], kPyTorchTolerance);
      }
    }
  }

  // Streams c's sequence in chunks of `sizes` with top_k `k`; checks the
  // outputs and tops; returns the responses.
  std::vector<v1::RegressResponse> Stream(const StepCase& c,
                                          const std::vector<int>& sizes,
                                          uint32_t k) {
    std::vector<v1::RegressResponse> responses;
    std::string token;
    int at = 0;
    std::vector<float> got;
    for (int size : sizes) {
      v1::RegressResponse response;
      auto context = ContextWithDeadline();
      const grpc::Status status = stub_->RegressChunk(
          context.get(), c.Chunk(at, size, token, k), &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      token = response.session_token();
      got.insert(got.end(), response.outputs().begin(),
                 response.outputs().end());
      if (k > 0) {
        ExpectTops(c, response, at, std::min<uint32_t>(k, c.outputs));
      } else {
        EXPECT_EQ(response.step_top_size(), 0);  // top_k 0: none.
      }
      responses.push_back(response);
      at += size;
    }
    EXPECT_EQ(got.size(), c.want.size());
    for (size_t i = 0; i < got.size() && i < c.want.size(); ++i) {
      EXPECT_NEAR(got[i], c.want[i], kPyTorchTolerance) << c.name << " " << i;
    }
    return responses;
  }

  TestServer server_;
  std::unique_ptr<v1::Inference::Stub> stub_ = server_.NewStub();
};

const StepCase& Softmax() {
  static const StepCase* c =
      new StepCase("gru_reg_2l_softmax", {"sil", "yes", "no", "up", "down"});
  return *c;
}
const StepCase& Sigmoid() {
  static const StepCase* c =
      new StepCase("lstm_reg_1l_sigmoid", {"speech", "music", "noise"});
  return *c;
}

TEST_F(StepClassesTest, SoftmaxChunksAnswerPyTorchsProbabilitiesAndTops) {
  Stream(Softmax(), {5, 5, 2}, 2);
  // Every step's probabilities sum to 1 (a property, not the golden).
  const std::vector<v1::RegressResponse> whole = Stream(Softmax(), {12}, 0);
  ASSERT_EQ(whole.size(), 1u);
  for (int t = 0; t < 12; ++t) {
    float sum = 0;
    for (int o = 0; o < 5; ++o) sum += whole[0].outputs(t * 5 + o);
    EXPECT_NEAR(sum, 1.0f, 1e-5f);
  }
}

TEST_F(StepClassesTest, SigmoidChunksAnswerPyTorchsProbabilitiesAndTops) {
  // top_k above the output size is clamped to it.
  Stream(Sigmoid(), {1, 4, 7}, 10);
}

TEST_F(StepClassesTest, AStreamListsTheTopsOfEveryChunk) {
  const StepCase& c = Softmax();
  auto context = ContextWithDeadline();
  auto stream = stub_->Regress(context.get());
  std::string token;
  for (int at = 0; at < 12; at += 4) {
    v1::RegressRequest request = c.Chunk(at, 4, token, 1);
    if (at > 0) request.clear_model();
    v1::RegressResponse response;
    ASSERT_TRUE(stream->Write(request) && stream->Read(&response));
    if (at == 0) token = response.session_token();
    ExpectTops(c, response, at, 1);
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(StepClassesTest, AReplayedChunkListsTheSameTops) {
  const StepCase& c = Softmax();
  const std::vector<v1::RegressResponse> first = Stream(c, {6, 6}, 3);
  v1::RegressRequest again = c.Chunk(6, 6, first[0].session_token(), 3);
  v1::RegressResponse replayed;
  auto context = ContextWithDeadline();
  ASSERT_TRUE(stub_->RegressChunk(context.get(), again, &replayed).ok());
  EXPECT_TRUE(replayed.replayed());
  ExpectTops(c, replayed, 6, 3);
  ASSERT_EQ(replayed.step_top_size(), first[1].step_top_size());
  for (int s = 0; s < replayed.step_top_size(); ++s) {
    EXPECT_EQ(replayed.step_top(s).SerializeAsString(),
              first[1].step_top(s).SerializeAsString());
  }
}

TEST_F(StepClassesTest, TopKIsRefusedForAModelWithoutOutputActivation) {
  v1::RegressRequest request =
      testing::ChunkRequest(std::vector<float>(4, 0.5f), 0, 4, "sine_rnn", "");
  request.set_top_k(1);
  v1::RegressResponse response;
  auto context = ContextWithDeadline();
  const grpc::Status status =
      stub_->RegressChunk(context.get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("top_k"));
}

TEST_F(StepClassesTest, ModelInfoSaysTheOutputActivation) {
  const std::vector<std::pair<std::string, std::string>> want = {
      {"gru_reg_2l_softmax", "softmax"},
      {"lstm_reg_1l_sigmoid", "sigmoid"},
      {"sine_rnn", "none"}};
  for (const auto& [name, activation] : want) {
    v1::GetModelRequest get;
    get.set_model(name);
    v1::ModelInfo info;
    auto context = ContextWithDeadline();
    ASSERT_TRUE(stub_->GetModel(context.get(), get, &info).ok());
    EXPECT_EQ(info.output_activation(), activation) << name;
  }
  v1::GetModelRequest get;
  get.set_model("gru_reg_2l_softmax");
  v1::ModelInfo info;
  auto context = ContextWithDeadline();
  ASSERT_TRUE(stub_->GetModel(context.get(), get, &info).ok());
  EXPECT_THAT(info.labels(),
              ::testing::ElementsAre("sil", "yes", "no", "up", "down"));
}

}  // namespace
}  // namespace rnnserve
