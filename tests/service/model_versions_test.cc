// Several versions of one model served side by side, over real gRPC: each
// version answers as PyTorch does for its own weights, requests pick a
// version or get the newest, and a session stays on the version it started
// on, also across replicas sharing a Redis session store.
//
// The repositories are built in a temporary folder from the PyTorch goldens:
// the versions of a model are different goldens (of different sizes, which
// versions may have), so that an answer from the wrong version cannot pass.
#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/batching/scheduler.h"
#include "server/model/loader.h"
#include "tests/metrics/exposition.h"
#include "tests/model/test_util.h"
#include "tests/testing/golden.h"
#include "tests/testing/model_copies.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/test_server.h"

namespace rnnserve {
namespace {

namespace fs = std::filesystem;
using testing::ContextWithDeadline;
using testing::CopyAsVersion;
using testing::ExpectSineOutputs;
using testing::Golden;
using testing::GoldensDir;
using ::testing::HasSubstr;
using testing::ReadGolden;
using testing::SineGolden;
using testing::SourceDir;
using testing::TestServer;

// See tests/engine/engine_golden_test.cc for why 1e-5 against PyTorch.
constexpr float kTolerance = 1e-5f;

// A classifier "cls": version 1 is the golden lstm_cls_2l_bi, version 2
// gru_cls_3l. A regressor "reg": version 1 the seed model sine_rnn, version
// 2 the golden rnn_relu_reg_2l. With `only_newest`, the default policy (the
// newest only) instead of serving both.
std::vector<model::Model> Repository(const fs::path& dir, bool only_newest) {
  CopyAsVersion("tests/goldens/lstm_cls_2l_bi", dir / "cls" / "1", "1");
  CopyAsVersion("tests/goldens/gru_cls_3l", dir / "cls" / "2", "2");
  CopyAsVersion("models/sine_rnn", dir / "reg" / "1", "1");
  CopyAsVersion("tests/goldens/rnn_relu_reg_2l", dir / "reg" / "2", "2");
  if (!only_newest) {
    model::testing::WriteFile(
        dir / "cls" / "model.json",
        R"({"version_policy": {"latest": {"num_versions": 2}}})");
    model::testing::WriteFile(dir / "reg" / "model.json",
                              R"({"version_policy": {"all": {}}})");
  }
  absl::StatusOr<std::vector<model::Model>> models =
      model::LoadModelRepository(dir);
  EXPECT_TRUE(models.ok()) << models.status();
  return models.ok() ? *std::move(models) : std::vector<model::Model>();
}

// The golden's sequences as a request for `model`.
v1::ClassifyRequest GoldenRequest(const Golden& golden,
                                  const std::string& version) {
  return testing::GoldenClassifyRequest(golden, "cls", version);
}

class ModelVersionsTest : public ::testing::Test {
 protected:
  grpc::Status Classify(const v1::ClassifyRequest& request,
                        v1::ClassifyResponse* response) {
    auto context = ContextWithDeadline();
    return stub_->Classify(context.get(), request, response);
  }
  grpc::Status Chunk(v1::Inference::Stub& stub,
                     const v1::RegressRequest& request,
                     v1::RegressResponse* response) {
    auto context = ContextWithDeadline();
    return stub.RegressChunk(context.get(), request, response);
  }
  // x[from, from + steps) of the sine stream for "reg", on `version`.
  v1::RegressRequest SineChunk(size_t from, size_t steps,
                               const std::string& token,
                               const std::string& version = "") {
    v1::RegressRequest r =
        testing::ChunkRequest(sine_.inputs, from, steps, "reg", token);
    r.set_model_version(version);
    return r;
  }

  model::testing::TempFolder temp_;
  SineGolden sine_;
  TestServer server_{Repository(temp_.path(), /*only_newest=*/false)};
  std::unique_ptr<v1::Inference::Stub> stub_ = server_.NewStub();
};

TEST_F(ModelVersionsTest, EachVersionAnswersAsPyTorchDoesForIt) {
  for (const auto& [version, golden_case] :
       std::vector<std::pair<std::string, std::string>>{
           {"1", "lstm_cls_2l_bi"}, {"2", "gru_cls_3l"}, {"", "gru_cls_3l"}}) {
    SCOPED_TRACE("model_version \"" + version + "\"");
    const Golden golden =
        ReadGolden(GoldensDir() / golden_case / "golden.safetensors");
    v1::ClassifyResponse response;
    const grpc::Status status =
        Classify(GoldenRequest(golden, version), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    // Without a version, the newest answers.
    EXPECT_EQ(response.model_version(), version.empty() ? "2" : version);
    const std::vector<float>& logits = golden.F32("logits");
    const int o = static_cast<int>(golden.shapes.at("logits")[1]);
    ASSERT_EQ(response.results_size(), 5);
    for (int i = 0; i < response.results_size(); ++i) {
      ASSERT_EQ(response.results(i).logits_size(), o);
      for (int k = 0; k < o; ++k) {
        EXPECT_NEAR(response.results(i).logits(k), logits[i * o + k],
                    kTolerance);
      }
    }
  }
}

TEST_F(ModelVersionsTest, AnUnloadedVersionIsNotFoundAndNamed) {
  const Golden golden =
      ReadGolden(GoldensDir() / "gru_cls_3l" / "golden.safetensors");
  v1::ClassifyResponse response;
  const grpc::Status status = Classify(GoldenRequest(golden, "3"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(),
              HasSubstr("model_version: model \"cls\" has versions 1, 2 "
                        "loaded, not \"3\""));
}

TEST_F(ModelVersionsTest, ModelInfoListsEveryVersionAndDescribesTheNewest) {
  v1::GetModelRequest request;
  request.set_model("cls");
  v1::ModelInfo info;
  auto context = ContextWithDeadline();
  const grpc::Status status = stub_->GetModel(context.get(), request, &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(info.version(), "2");
  EXPECT_EQ(info.cell(), v1::CELL_GRU);
  ASSERT_EQ(info.versions_size(), 2);
  EXPECT_EQ(info.versions(0).version(), "1");
  EXPECT_EQ(info.versions(0).cell(), v1::CELL_LSTM);
  EXPECT_EQ(info.versions(0).input_size(), 5u);
  EXPECT_EQ(info.versions(1).version(), "2");
  EXPECT_EQ(info.versions(1).input_size(), 3u);

  v1::ListModelsResponse list;
  auto list_context = ContextWithDeadline();
  ASSERT_TRUE(
      stub_->ListModels(list_context.get(), v1::ListModelsRequest(), &list)
          .ok());
  ASSERT_EQ(list.models_size(), 2);  // One entry per model.
  EXPECT_EQ(list.models(1).name(), "reg");
  EXPECT_EQ(list.models(1).version(), "2");
  ASSERT_EQ(list.models(1).versions_size(), 2);
  EXPECT_EQ(list.models(1).versions(0).version(), "1");
  EXPECT_EQ(list.models(1).versions(0).output_size(), 1u);
}

TEST_F(ModelVersionsTest, ModelInfoMetricHasASeriesPerVersion) {
  const std::string text = server_.metrics().Render();
  int series = 0;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("rnnserve_model_info{", 0) == 0 &&
        line.find("model=\"cls\"") != std::string::npos) {
      ++series;
      EXPECT_THAT(line, ::testing::AnyOf(HasSubstr("version=\"1\""),
                                         HasSubstr("version=\"2\"")));
    }
  }
  EXPECT_EQ(series, 2);
}

TEST_F(ModelVersionsTest, EachVersionHasItsOwnSeries) {
  const auto scrape = [&] {
    absl::StatusOr<metrics::testing::Exposition> e =
        metrics::testing::ParseExposition(server_.metrics().Render());
    EXPECT_TRUE(e.ok()) << e.status();
    return e.value_or(metrics::testing::Exposition{});
  };
  const auto of = [](const char* version, const char* method) {
    return metrics::testing::Labels{
        {"model", "reg"}, {"version", version}, {"method", method}};
  };
  const auto ok = [&](const char* version) {
    metrics::testing::Labels labels = of(version, "RegressChunk");
    labels["code"] = "OK";
    return labels;
  };
  // Each version has a queue of the default capacity.
  metrics::testing::Exposition e = scrape();
  for (const char* version : {"1", "2"}) {
    EXPECT_EQ(e.Value("rnnserve_queue_capacity", of(version, "Regress")),
              batching::QueueOptions().max_queued_steps);
  }
  // A session started on version 1, then resumed without naming a version:
  // both chunks are version 1's. A new session goes to the newest.
  v1::RegressResponse response;
  ASSERT_TRUE(Chunk(*stub_, SineChunk(0, 10, "", "1"), &response).ok());
  ASSERT_TRUE(
      Chunk(*stub_, SineChunk(10, 10, response.session_token()), &response)
          .ok());
  EXPECT_EQ(response.model_version(), "1");
  v1::RegressRequest newest;
  newest.set_model("reg");
  newest.set_steps(1);
  newest.add_values(0.5f);
  newest.add_values(0.5f);
  ASSERT_TRUE(Chunk(*stub_, newest, &response).ok());
  e = scrape();
  EXPECT_EQ(e.Value("rnnserve_requests_total", ok("1")), 2.0);
  EXPECT_EQ(e.Value("rnnserve_requests_total", ok("2")), 1.0);
  EXPECT_EQ(e.Value("rnnserve_sessions_created_total",
                    {{"model", "reg"}, {"version", "1"}}),
            1.0);
  EXPECT_EQ(e.Value("rnnserve_sessions_resumed_total",
                    {{"model", "reg"}, {"version", "1"}}),
            1.0);
  EXPECT_EQ(e.Value("rnnserve_sessions_created_total",
                    {{"model", "reg"}, {"version", "2"}}),
            1.0);
  // Both queues are empty again.
  for (const char* version : {"1", "2"}) {
    EXPECT_EQ(e.Value("rnnserve_queue_depth", of(version, "Regress")), 0.0);
  }
}

TEST_F(ModelVersionsTest, ASessionStaysOnTheVersionItStartedOn) {
  v1::RegressResponse first;
  grpc::Status status = Chunk(*stub_, SineChunk(0, 40, "", "1"), &first);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(first.model_version(), "1");
  ExpectSineOutputs(first, sine_, 0, 40);

  // Resumed without naming a version: still version 1 (whose input size,
  // 1, the newest version's 2 would refuse).
  v1::RegressResponse second;
  status = Chunk(*stub_, SineChunk(40, 30, first.session_token()), &second);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(second.model_version(), "1");
  EXPECT_EQ(second.first_step(), 40u);
  ExpectSineOutputs(second, sine_, 40, 30);

  // And on a stream, naming the session's version.
  auto context = ContextWithDeadline();
  auto stream = stub_->Regress(context.get());
  v1::RegressResponse third;
  ASSERT_TRUE(stream->Write(SineChunk(70, 30, first.session_token(), "1")));
  ASSERT_TRUE(stream->Read(&third));
  EXPECT_EQ(third.model_version(), "1");
  ExpectSineOutputs(third, sine_, 70, 30);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());

  // Naming another version is refused.
  v1::RegressResponse refused;
  status =
      Chunk(*stub_, SineChunk(100, 0, first.session_token(), "2"), &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("model_version: the session runs on version \"1\" of "
                        "model \"reg\", not \"2\""));
}

TEST_F(ModelVersionsTest, ANewSessionWithoutAVersionRunsOnTheNewest) {
  // Version 2 is rnn_relu_reg_2l: 2 inputs and 3 outputs per step.
  v1::RegressRequest request;
  request.set_model("reg");
  request.set_steps(2);
  for (float v : {0.1f, 0.2f, 0.3f, 0.4f}) request.add_values(v);
  v1::RegressResponse response;
  const grpc::Status status = Chunk(*stub_, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.model_version(), "2");
  EXPECT_EQ(response.outputs_size(), 6);
}

// Two replicas sharing a Redis session store; "b" serves only version 2.
class SharedVersionsTest : public ::testing::Test {
 protected:
  service::ServerOptions Options() const {
    service::ServerOptions o;
    sessions::RedisConnection::Options redis;
    redis.address = {"127.0.0.1", redis_.port(), 0};
    o.redis_sessions = redis;
    return o;
  }

  model::testing::TempFolder temp_a_, temp_b_;
  testing::RedisServer redis_;
  SineGolden sine_;
  TestServer a_{Repository(temp_a_.path(), /*only_newest=*/false), Options()};
  TestServer b_{Repository(temp_b_.path(), /*only_newest=*/true), Options()};
};

TEST_F(SharedVersionsTest, AReplicaWithoutTheSessionsVersionRefusesIt) {
  auto a = a_.NewStub();
  auto b = b_.NewStub();
  v1::RegressRequest start =
      testing::ChunkRequest(sine_.inputs, 0, 50, "reg", "");
  start.set_model_version("1");
  v1::RegressResponse first;
  auto c1 = ContextWithDeadline();
  grpc::Status status = a->RegressChunk(c1.get(), start, &first);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(first.model_version(), "1");

  v1::RegressResponse refused;
  auto c2 = ContextWithDeadline();
  status = b->RegressChunk(
      c2.get(),
      testing::ChunkRequest(sine_.inputs, 50, 0, "reg", first.session_token()),
      &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(),
              HasSubstr("model_version: the session runs on version \"1\" of "
                        "model \"reg\", which this server has not loaded "
                        "(loaded versions: 2)"));

  // Replica a, which has version 1, resumes it there from the shared store.
  v1::RegressResponse resumed;
  auto c3 = ContextWithDeadline();
  status = a->RegressChunk(
      c3.get(),
      testing::ChunkRequest(sine_.inputs, 50, 50, "reg", first.session_token()),
      &resumed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resumed.model_version(), "1");
  ExpectSineOutputs(resumed, sine_, 50, 50);
}

}  // namespace
}  // namespace rnnserve
