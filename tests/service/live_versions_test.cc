// Model versions loaded and unloaded while the server serves, over real
// gRPC, from a repository folder the test changes: through the Repository
// service (with an admin token), a rescan as SIGHUP asks for, and polling.
// Answers are checked against the PyTorch goldens of the version that
// gave them; a session stays on its version while it drains.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rnnserve/v1/inference.grpc.pb.h"
#include "tests/metrics/exposition.h"
#include "tests/model/test_util.h"
#include "tests/testing/golden.h"
#include "tests/testing/model_copies.h"
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
using testing::TestServer;

constexpr char kAdminToken[] = "admin-token-0123456789abcdef";
// See tests/engine/engine_golden_test.cc for why 1e-5 against PyTorch.
constexpr float kTolerance = 1e-5f;

// Waits up to 20 s for `done`, checking every 20 ms.
bool Eventually(const std::function<bool()>& done) {
  const absl::Time end = absl::Now() + absl::Seconds(20);
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return done();
}

service::ServerOptions Options(const fs::path& root, bool poll) {
  service::ServerOptions o;
  o.repository.root = root;
  o.repository.poll = poll;
  o.repository.poll_interval = absl::Milliseconds(100);
  o.repository.drain_check_interval = absl::Milliseconds(20);
  absl::StatusOr<service::BearerTokens> tokens =
      service::BearerTokens::Parse(kAdminToken);
  EXPECT_TRUE(tokens.ok()) << tokens.status();
  o.admin_tokens = *std::move(tokens);
  return o;
}

class LiveVersionsTest : public ::testing::Test {
 protected:
  // "cls" at version 1 (golden lstm_cls_2l_bi), "reg" at version 1 (the
  // seed sine_rnn); the default policy serves the newest only.
  void StartServer(bool poll = false) {
    CopyAsVersion("tests/goldens/lstm_cls_2l_bi", root() / "cls" / "1", "1");
    CopyAsVersion("models/sine_rnn", root() / "reg" / "1", "1");
    server_ = std::make_unique<TestServer>(std::vector<model::Model>(),
                                           Options(root(), poll));
    ASSERT_TRUE(server_->ok());
    channel_ = server_->NewChannel();
    stub_ = v1::Inference::NewStub(channel_);
    admin_ = v1::Repository::NewStub(channel_);
  }
  fs::path root() const { return temp_.path(); }

  // Classifies golden `name`'s sequences; expects its logits, and returns
  // the version that answered.
  std::string ClassifyAs(const std::string& name) {
    const Golden golden =
        ReadGolden(GoldensDir() / name / "golden.safetensors");
    v1::ClassifyResponse response;
    auto context = ContextWithDeadline();
    const grpc::Status status = stub_->Classify(
        context.get(), testing::GoldenClassifyRequest(golden, "cls"),
        &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    const std::vector<float>& logits = golden.F32("logits");
    const int o = static_cast<int>(golden.shapes.at("logits")[1]);
    EXPECT_EQ(response.results_size(), 5);
    for (int i = 0; i < response.results_size(); ++i) {
      for (int k = 0; k < o && k < response.results(i).logits_size(); ++k) {
        EXPECT_NEAR(response.results(i).logits(k), logits[i * o + k],
                    kTolerance)
            << name;
      }
    }
    return response.model_version();
  }

  grpc::Status Chunk(const v1::RegressRequest& request,
                     v1::RegressResponse* response) {
    auto context = ContextWithDeadline();
    return stub_->RegressChunk(context.get(), request, response);
  }

  // The state of `version` of `model` in RepositoryIndex ("" if absent).
  std::string StateOf(const std::string& model, const std::string& version,
                      uint64_t* sessions = nullptr) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", std::string("Bearer ") + kAdminToken);
    v1::RepositoryIndexResponse index;
    if (!admin_->RepositoryIndex(&context, {}, &index).ok()) return "";
    for (const v1::RepositoryModel& m : index.models()) {
      if (m.name() != model) continue;
      for (const v1::VersionStatus& v : m.versions()) {
        if (v.version() != version) continue;
        if (sessions != nullptr) *sessions = v.sessions();
        return v1::VersionState_Name(v.state());
      }
    }
    return "";
  }

  grpc::Status LoadModel(const std::string& model,
                         v1::LoadModelResponse* response,
                         const char* token = kAdminToken) {
    auto context = ContextWithDeadline();
    if (token != nullptr) {
      context->AddMetadata("authorization", std::string("Bearer ") + token);
    }
    v1::LoadModelRequest request;
    request.set_model(model);
    return admin_->LoadModel(context.get(), request, response);
  }

  metrics::testing::Exposition Scrape() {
    absl::StatusOr<metrics::testing::Exposition> e =
        metrics::testing::ParseExposition(server_->metrics().Render());
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *e : metrics::testing::Exposition();
  }

  model::testing::TempFolder temp_;
  SineGolden sine_;
  std::unique_ptr<TestServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inference::Stub> stub_;
  std::unique_ptr<v1::Repository::Stub> admin_;
};

TEST_F(LiveVersionsTest, ASessionStaysOnItsVersionWhileItDrainsThenItIsFreed) {
  StartServer();
  v1::RegressResponse first;
  ASSERT_TRUE(
      Chunk(testing::ChunkRequest(sine_.inputs, 0, 40, "reg", ""), &first)
          .ok());
  EXPECT_EQ(first.model_version(), "1");
  const std::string token = first.session_token();

  // Version 2 is rnn_relu_reg_2l: 2 inputs per step, which version 1's
  // chunks (1 input) would not fit.
  CopyAsVersion("tests/goldens/rnn_relu_reg_2l", root() / "reg" / "2", "2");
  v1::LoadModelResponse loaded;
  grpc::Status status = LoadModel("reg", &loaded);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(loaded.model().versions_size(), 2);
  EXPECT_EQ(loaded.model().versions(0).state(), v1::VERSION_STATE_DRAINING);
  EXPECT_EQ(loaded.model().versions(0).sessions(), 1u);
  EXPECT_EQ(loaded.model().versions(1).state(), v1::VERSION_STATE_READY);

  // The session goes on exactly where it was, on version 1.
  v1::RegressResponse second;
  status =
      Chunk(testing::ChunkRequest(sine_.inputs, 40, 30, "reg", token), &second);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(second.model_version(), "1");
  ExpectSineOutputs(second, sine_, 40, 30);
  // A new session, and a call naming no version, get version 2.
  v1::RegressRequest fresh;
  fresh.set_model("reg");
  fresh.set_steps(1);
  fresh.add_values(0.5f);
  fresh.add_values(0.5f);
  v1::RegressResponse newest;
  ASSERT_TRUE(Chunk(fresh, &newest).ok());
  EXPECT_EQ(newest.model_version(), "2");
  // Version 1 takes no new session.
  v1::RegressRequest pinned =
      testing::ChunkRequest(sine_.inputs, 0, 1, "reg", "");
  pinned.set_model_version("1");
  EXPECT_EQ(Chunk(pinned, &newest).error_code(), grpc::StatusCode::NOT_FOUND);

  // GetModel shows it draining with its session.
  v1::GetModelRequest get;
  get.set_model("reg");
  v1::ModelInfo info;
  {
    auto context = ContextWithDeadline();
    ASSERT_TRUE(stub_->GetModel(context.get(), get, &info).ok());
  }
  EXPECT_EQ(info.version(), "2");
  ASSERT_EQ(info.versions_size(), 2);
  EXPECT_EQ(info.versions(0).state(), v1::VERSION_STATE_DRAINING);
  EXPECT_EQ(info.versions(0).sessions(), 1u);

  // Once the session ends, version 1 is freed, and its series go.
  v1::RegressRequest end =
      testing::ChunkRequest(sine_.inputs, 70, 0, "reg", token);
  end.set_end_session(true);
  ASSERT_TRUE(Chunk(end, &second).ok());
  EXPECT_TRUE(Eventually([&] {
    return StateOf("reg", "1") == "VERSION_STATE_UNLOADED";
  })) << StateOf("reg", "1");
  const metrics::testing::Exposition e = Scrape();
  EXPECT_EQ(
      e.Value("rnnserve_model_version_state",
              {{"model", "reg"}, {"version", "1"}, {"state", "unloaded"}}),
      1.0);
  EXPECT_FALSE(
      e.Value("rnnserve_model_info", {{"model", "reg"}, {"version", "1"}})
          .has_value());
}

TEST_F(LiveVersionsTest, AFailedLoadKeepsTheOldVersionServingUntilItIsFixed) {
  StartServer();
  EXPECT_EQ(ClassifyAs("lstm_cls_2l_bi"), "1");
  // Version 2 with its weights cut short, as by a copy still running.
  CopyAsVersion("tests/goldens/gru_cls_3l", root() / "cls" / "2", "2");
  const fs::path weights = root() / "cls" / "2" / "model.safetensors";
  const std::string whole = testing::ReadText(weights);
  model::testing::WriteFile(weights, whole.substr(0, whole.size() / 2));
  server_->server().repository().RequestRescan();  // What SIGHUP does.
  ASSERT_TRUE(Eventually([&] {
    return StateOf("cls", "2") == "VERSION_STATE_FAILED";
  })) << StateOf("cls", "2");
  EXPECT_EQ(StateOf("cls", "1"), "VERSION_STATE_READY");
  EXPECT_EQ(ClassifyAs("lstm_cls_2l_bi"), "1");
  EXPECT_EQ(Scrape().Value(
                "rnnserve_model_loads_total",
                {{"model", "cls"}, {"version", "2"}, {"outcome", "failed"}}),
            1.0);
  // LoadModel says why.
  v1::LoadModelResponse loaded;
  grpc::Status status = LoadModel("cls", &loaded);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(),
              HasSubstr("version 2 of model cls failed to load"));

  // The copy completes: version 2 takes over; version 1, without
  // sessions, is unloaded.
  model::testing::WriteFile(weights, whole);
  status = LoadModel("cls", &loaded);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(ClassifyAs("gru_cls_3l"), "2");
  EXPECT_TRUE(Eventually(
      [&] { return StateOf("cls", "1") == "VERSION_STATE_UNLOADED"; }));
}

TEST_F(LiveVersionsTest,
       PollingLoadsNewVersionsAndRemovingOneBringsBackTheOld) {
  StartServer(/*poll=*/true);
  EXPECT_EQ(ClassifyAs("lstm_cls_2l_bi"), "1");
  // Copied under a hidden name and renamed: never seen half-written.
  CopyAsVersion("tests/goldens/gru_cls_3l", root() / "cls" / ".2", "2");
  fs::rename(root() / "cls" / ".2", root() / "cls" / "2");
  ASSERT_TRUE(
      Eventually([&] { return StateOf("cls", "2") == "VERSION_STATE_READY"; }));
  EXPECT_EQ(ClassifyAs("gru_cls_3l"), "2");
  // Rolled back by removing it.
  fs::remove_all(root() / "cls" / "2");
  ASSERT_TRUE(
      Eventually([&] { return StateOf("cls", "1") == "VERSION_STATE_READY"; }));
  EXPECT_TRUE(Eventually(
      [&] { return StateOf("cls", "2") == "VERSION_STATE_UNLOADED"; }));
  EXPECT_EQ(ClassifyAs("lstm_cls_2l_bi"), "1");
}

TEST_F(LiveVersionsTest, UnloadModelKeepsAModelUnloadedUntilLoadModel) {
  StartServer();
  auto unload = [&](const char* token) {
    auto context = ContextWithDeadline();
    if (token != nullptr) {
      context->AddMetadata("authorization", std::string("Bearer ") + token);
    }
    v1::UnloadModelRequest request;
    request.set_model("cls");
    v1::UnloadModelResponse response;
    return admin_->UnloadModel(context.get(), request, &response);
  };
  // Inference tokens, or none, are no admin tokens.
  EXPECT_EQ(unload(nullptr).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(unload("not-the-admin-token-at-all").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(unload(kAdminToken).ok());
  EXPECT_EQ(StateOf("cls", "1"), "VERSION_STATE_UNLOADED");
  v1::ClassifyResponse response;
  {
    auto context = ContextWithDeadline();
    const Golden golden =
        ReadGolden(GoldensDir() / "lstm_cls_2l_bi" / "golden.safetensors");
    const grpc::Status status = stub_->Classify(
        context.get(), testing::GoldenClassifyRequest(golden, "cls"),
        &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(status.error_message(), HasSubstr("has no version loaded"));
  }
  // A rescan leaves it alone; LoadModel brings it back.
  server_->server().repository().RequestRescan();
  v1::LoadModelResponse loaded;
  ASSERT_TRUE(LoadModel("reg", &loaded).ok());  // Runs after the rescan.
  EXPECT_EQ(StateOf("cls", "1"), "VERSION_STATE_UNLOADED");
  ASSERT_TRUE(LoadModel("cls", &loaded).ok());
  EXPECT_EQ(ClassifyAs("lstm_cls_2l_bi"), "1");
  // A name that is no model folder is refused, naming the field.
  EXPECT_EQ(LoadModel("../etc", &loaded).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(RepositoryServiceTest, IsNotOfferedWithoutAdminTokens) {
  TestServer server(testing::LoadModels({"models/sine_rnn"}));
  ASSERT_TRUE(server.ok());
  auto admin = v1::Repository::NewStub(server.NewChannel());
  auto context = ContextWithDeadline();
  v1::RepositoryIndexResponse index;
  EXPECT_EQ(admin->RepositoryIndex(context.get(), {}, &index).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace rnnserve
