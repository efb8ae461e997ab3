// Classify over a real gRPC channel to an in-process server.
#include <atomic>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/metrics/exposition.h"
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
constexpr float kTolerance = 1e-5f;

class ClassifyServiceTest : public ::testing::Test {
 protected:
  static std::vector<model::Model> Models() {
    return testing::LoadModels({"models/fashion_lstm", "models/sine_rnn",
                                "tests/goldens/lstm_cls_2l_bi",
                                "tests/goldens/gru_cls_3l"});
  }
  // The golden's sequences as a request.
  static v1::ClassifyRequest GoldenRequest(const std::string& name,
                                           const Golden& golden) {
    return testing::GoldenClassifyRequest(golden, name);
  }

  grpc::Status Call(const v1::ClassifyRequest& request,
                    v1::ClassifyResponse* response) {
    auto context = ContextWithDeadline();
    return stub_->Classify(context.get(), request, response);
  }

  // The batches run so far for `model`'s Classify calls and the sequences in
  // them, as /metrics tells them.
  struct BatchCounts {
    double batches = 0;
    double sequences = 0;
  };
  BatchCounts Batches(const std::string& model) {
    absl::StatusOr<metrics::testing::Exposition> exposition =
        metrics::testing::ParseExposition(server_.metrics().Render());
    EXPECT_TRUE(exposition.ok()) << exposition.status();
    if (!exposition.ok()) return {};
    const metrics::testing::Labels labels = {
        {"model", model}, {"version", "golden-1"}, {"method", "Classify"}};
    const std::optional<double> count =
        exposition->Value("rnnserve_batch_size_count", labels);
    const std::optional<double> sum =
        exposition->Value("rnnserve_batch_size_sum", labels);
    EXPECT_TRUE(count.has_value() && sum.has_value());
    return {count.value_or(0), sum.value_or(0)};
  }

  TestServer server_{Models()};
  std::unique_ptr<v1::Inference::Stub> stub_ = server_.NewStub();
};

TEST_F(ClassifyServiceTest, MatchesPyTorchGoldens) {
  for (const char* name : {"lstm_cls_2l_bi", "gru_cls_3l"}) {
    SCOPED_TRACE(name);
    const Golden golden =
        ReadGolden(GoldensDir() / name / "golden.safetensors");
    v1::ClassifyRequest request = GoldenRequest(name, golden);
    request.set_top_k(2);
    v1::ClassifyResponse response;
    const grpc::Status status = Call(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.model(), name);
    EXPECT_EQ(response.model_version(), "golden-1");
    ASSERT_EQ(response.results_size(), request.sequences_size());
    const std::vector<float>& logits = golden.F32("logits");
    const std::vector<float>& probs = golden.F32("probabilities");
    const int o = static_cast<int>(golden.shapes.at("logits")[1]);
    for (int i = 0; i < response.results_size(); ++i) {
      const v1::Classification& r = response.results(i);
      ASSERT_EQ(r.logits_size(), o);
      for (int k = 0; k < o; ++k) {
        EXPECT_NEAR(r.logits(k), logits[i * o + k], kTolerance);
        EXPECT_NEAR(r.probabilities(k), probs[i * o + k], kTolerance);
      }
      // The top classes are PyTorch's most probable ones, best first.
      ASSERT_EQ(r.top_size(), 2);
      const float* p = probs.data() + i * o;
      const int best = static_cast<int>(std::max_element(p, p + o) - p);
      EXPECT_EQ(static_cast<int>(r.top(0).index()), best);
      EXPECT_GE(r.top(0).probability(), r.top(1).probability());
    }
  }
}

// MLP heads and readouts other than the last step's output, served.
class ClassifyHeadsServiceTest : public ::testing::Test {
 protected:
  static constexpr const char* kCases[] = {
      "lstm_cls_2l_bi_mlp_final", "lstm_cls_1l_final",
      "gru_cls_2l_mean_mlp",      "gru_cls_1l_bi_mean",
      "rnn_tanh_cls_2l_max_mlp",  "rnn_relu_cls_1l_bi_max"};
  static std::vector<model::Model> Models() {
    std::vector<std::string> paths;
    for (const char* name : kCases) {
      paths.push_back(std::string("tests/goldens/") + name);
    }
    return testing::LoadModels(paths);
  }

  TestServer server_{Models()};
  std::unique_ptr<v1::Inference::Stub> stub_ = server_.NewStub();
};

TEST_F(ClassifyHeadsServiceTest, MatchPyTorchGoldensInOneBatch) {
  for (const char* name : kCases) {
    SCOPED_TRACE(name);
    const Golden golden =
        ReadGolden(GoldensDir() / name / "golden.safetensors");
    const v1::ClassifyRequest request =
        testing::GoldenClassifyRequest(golden, name);
    v1::ClassifyResponse response;
    auto context = ContextWithDeadline();
    const grpc::Status status =
        stub_->Classify(context.get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.results_size(), request.sequences_size());
    const std::vector<float>& logits = golden.F32("logits");
    const std::vector<float>& probs = golden.F32("probabilities");
    const int o = static_cast<int>(golden.shapes.at("logits")[1]);
    for (int i = 0; i < response.results_size(); ++i) {
      const v1::Classification& r = response.results(i);
      ASSERT_EQ(r.logits_size(), o);
      for (int k = 0; k < o; ++k) {
        EXPECT_NEAR(r.logits(k), logits[i * o + k], kTolerance);
        EXPECT_NEAR(r.probabilities(k), probs[i * o + k], kTolerance);
      }
    }
  }
}

TEST_F(ClassifyHeadsServiceTest, ModelsDescribeTheirHeadAndReadout) {
  v1::GetModelRequest get;
  get.set_model("gru_cls_2l_mean_mlp");
  v1::ModelInfo info;
  auto context = ContextWithDeadline();
  ASSERT_TRUE(stub_->GetModel(context.get(), get, &info).ok());
  EXPECT_EQ(info.readout(), "mean");
  EXPECT_THAT(info.head(),
              ::testing::ElementsAre("linear:8", "tanh", "linear:8", "gelu",
                                     "linear:4"));
  get.set_model("rnn_relu_cls_1l_bi_max");
  auto context2 = ContextWithDeadline();
  ASSERT_TRUE(stub_->GetModel(context2.get(), get, &info).ok());
  EXPECT_EQ(info.readout(), "max");
  EXPECT_TRUE(info.head().empty());
}

TEST_F(ClassifyServiceTest, ModelsDescribeThemselves) {
  v1::ListModelsResponse list;
  {
    auto context = ContextWithDeadline();
    ASSERT_TRUE(
        stub_->ListModels(context.get(), v1::ListModelsRequest(), &list).ok());
  }
  std::vector<std::string> names;
  for (const v1::ModelInfo& m : list.models()) names.push_back(m.name());
  EXPECT_THAT(names, ::testing::ElementsAre("fashion_lstm", "gru_cls_3l",
                                            "lstm_cls_2l_bi", "sine_rnn"));
  v1::GetModelRequest get;
  get.set_model("fashion_lstm");
  v1::ModelInfo info;
  auto context = ContextWithDeadline();
  ASSERT_TRUE(stub_->GetModel(context.get(), get, &info).ok());
  EXPECT_EQ(info.cell(), v1::CELL_LSTM);
  EXPECT_EQ(info.task(), v1::TASK_CLASSIFICATION);
  EXPECT_EQ(info.input_size(), 28u);
  EXPECT_EQ(info.hidden_size(), 64u);
  EXPECT_EQ(info.output_size(), 10u);
  EXPECT_EQ(info.labels_size(), 10);
  EXPECT_THAT(info.description(), HasSubstr("Fashion-MNIST"));
  EXPECT_EQ(info.batching().max_batch_size(), 64u);
  EXPECT_EQ(info.max_steps(), 10000u);
  EXPECT_EQ(info.readout(), "last_output");
  EXPECT_TRUE(info.head().empty());
  get.set_model("nope");
  auto context2 = ContextWithDeadline();
  EXPECT_EQ(stub_->GetModel(context2.get(), get, &info).error_code(),
            grpc::NOT_FOUND);
}

TEST_F(ClassifyServiceTest, LabelsComeWithTheTopClasses) {
  v1::ClassifyRequest request;
  request.set_model("fashion_lstm");
  v1::Sequence* s = request.add_sequences();
  s->set_steps(28);
  s->mutable_values()->Resize(28 * 28, 0.5f);
  request.set_top_k(100);  // Clamped to the 10 classes.
  v1::ClassifyResponse response;
  ASSERT_TRUE(Call(request, &response).ok());
  ASSERT_EQ(response.results(0).top_size(), 10);
  std::set<std::string> labels;
  for (const v1::ClassScore& c : response.results(0).top()) {
    labels.insert(c.label());
  }
  EXPECT_TRUE(labels.count("Ankle boot"));
  EXPECT_EQ(labels.size(), 10u);
}

TEST_F(ClassifyServiceTest, ConcurrentClientsGetSerialAnswersAndBatchesForm) {
  const Golden golden =
      ReadGolden(GoldensDir() / "lstm_cls_2l_bi" / "golden.safetensors");
  const v1::ClassifyRequest all = GoldenRequest("lstm_cls_2l_bi", golden);
  // One request per sequence, answered one at a time.
  std::vector<v1::ClassifyResponse> serial(all.sequences_size());
  for (int i = 0; i < all.sequences_size(); ++i) {
    v1::ClassifyRequest one;
    one.set_model("lstm_cls_2l_bi");
    *one.add_sequences() = all.sequences(i);
    ASSERT_TRUE(Call(one, &serial[i]).ok());
  }
  const BatchCounts before = Batches("lstm_cls_2l_bi");
  constexpr int kClients = 64, kCallsEach = 20;
  std::atomic<int> wrong{0}, failed{0};
  absl::Mutex mu;
  std::map<std::string, int> failures;  // "CODE: message" -> count
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto stub = server_.NewStub();
      for (int k = 0; k < kCallsEach; ++k) {
        const int i = (c + k) % all.sequences_size();
        v1::ClassifyRequest one;
        one.set_model("lstm_cls_2l_bi");
        *one.add_sequences() = all.sequences(i);
        v1::ClassifyResponse response;
        auto context = ContextWithDeadline();
        const grpc::Status status =
            stub->Classify(context.get(), one, &response);
        if (!status.ok()) {
          ++failed;
          absl::MutexLock lock(&mu);
          ++failures[std::to_string(status.error_code()) + ": " +
                     status.error_message()];
          continue;
        }
        // Bit for bit: batching must not change any answer.
        const auto& got = response.results(0).logits();
        const auto& want = serial[i].results(0).logits();
        if (!std::equal(
                got.begin(), got.end(), want.begin(), want.end(),
                [](float a, float b) { return std::fabs(a - b) <= 1e-6f; })) {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(failed, 0) << ::testing::PrintToString(failures);
  EXPECT_EQ(wrong, 0);
  // The batch-size histogram counts one observation per batch the runtime
  // hands the engine, whatever lengths the batch mixes, and sums the
  // sequences in them: fewer batches than sequences means batches formed.
  const BatchCounts after = Batches("lstm_cls_2l_bi");
  const double batches = after.batches - before.batches;
  EXPECT_EQ(after.sequences - before.sequences, kClients * kCallsEach);
  EXPECT_GE(batches, 1);
  EXPECT_LT(batches, kClients * kCallsEach);
  std::cout << kClients * kCallsEach << " sequences ran in " << batches
            << " batches\n";
}

TEST_F(ClassifyServiceTest, BadInputsAreRefusedWithTheFieldNamed) {
  v1::ClassifyRequest good;
  good.set_model("fashion_lstm");
  v1::Sequence* s = good.add_sequences();
  s->set_steps(28);
  s->mutable_values()->Resize(28 * 28, 0.1f);

  struct Case {
    std::string name;
    std::function<void(v1::ClassifyRequest&)> edit;
    grpc::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"unknown model", [](auto& r) { r.set_model("nope"); }, grpc::NOT_FOUND,
       "model: no model named \"nope\""},
      {"no model", [](auto& r) { r.clear_model(); }, grpc::INVALID_ARGUMENT,
       "model: a model name is required"},
      {"regression model", [](auto& r) { r.set_model("sine_rnn"); },
       grpc::FAILED_PRECONDITION, "regression model"},
      {"no sequences", [](auto& r) { r.clear_sequences(); },
       grpc::INVALID_ARGUMENT, "sequences: at least one"},
      {"zero steps",
       [](auto& r) {
         r.mutable_sequences(0)->set_steps(0);
         r.mutable_sequences(0)->clear_values();
       },
       grpc::INVALID_ARGUMENT, "sequences[0].steps: must be at least 1"},
      {"values count",
       [](auto& r) { r.mutable_sequences(0)->mutable_values()->RemoveLast(); },
       grpc::INVALID_ARGUMENT,
       "sequences[0].values: expected 784 values (28 steps x 28 inputs), got "
       "783"},
      {"NaN",
       [](auto& r) { r.mutable_sequences(0)->set_values(5, std::nanf("")); },
       grpc::INVALID_ARGUMENT, "sequences[0].values[5]"},
      {"Inf", [](auto& r) { r.mutable_sequences(0)->set_values(7, INFINITY); },
       grpc::INVALID_ARGUMENT, "sequences[0].values[7]"},
      // Past the first 64 values, in the second sequence, the last value;
      // with two bad values the first is named.
      {"NaN late in the second sequence",
       [](auto& r) {
         *r.add_sequences() = r.sequences(0);
         r.mutable_sequences(1)->set_values(700, std::nanf(""));
       },
       grpc::INVALID_ARGUMENT, "sequences[1].values[700]: nan"},
      {"-Inf last",
       [](auto& r) { r.mutable_sequences(0)->set_values(783, -INFINITY); },
       grpc::INVALID_ARGUMENT, "sequences[0].values[783]: -inf"},
      {"two bad values",
       [](auto& r) {
         r.mutable_sequences(0)->set_values(130, INFINITY);
         r.mutable_sequences(0)->set_values(129, std::nanf(""));
         r.mutable_sequences(0)->set_values(500, std::nanf(""));
       },
       grpc::INVALID_ARGUMENT, "sequences[0].values[129]: nan"},
      {"too many steps",
       [](auto& r) {
         r.mutable_sequences(0)->set_steps(10001);
         r.mutable_sequences(0)->mutable_values()->Resize(10001 * 28, 0.0f);
       },
       grpc::INVALID_ARGUMENT,
       "sequences[0].steps: 10001 steps, at most 10000"},
      {"too many sequences",
       [](auto& r) {
         for (int i = 0; i < 256; ++i) *r.add_sequences() = r.sequences(0);
       },
       grpc::INVALID_ARGUMENT, "sequences: 257 sequences, at most 256"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::ClassifyRequest request = good;
    c.edit(request);
    v1::ClassifyResponse response;
    const grpc::Status status = Call(request, &response);
    EXPECT_EQ(status.error_code(), c.code) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.message));
    // The server keeps serving.
    ASSERT_TRUE(Call(good, &response).ok());
  }
}

}  // namespace
}  // namespace rnnserve
