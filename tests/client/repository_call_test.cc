// rnnctl's repository calls over real gRPC channels, against a stand-in
// Repository service in the test process (the server's own does not exist
// on this branch yet): the admin token travels instead of the inference
// token, a refused token and a server without the service are told in
// operator's terms, and a failed load shows the model as the index does.
#include "client/repository_call.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "client/common_flags.h"
#include "client/connection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rnnserve::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kAdminToken[] = "admin-secret";

// Answers as the server's repository service is specified to: only with
// the admin token; a load of "broken" fails on its version 3 while
// version 2 keeps serving. Records the authorization headers it got.
class StandInRepository final : public v1::Repository::Service {
 public:
  grpc::Status RepositoryIndex(grpc::ServerContext* context,
                               const v1::RepositoryIndexRequest*,
                               v1::RepositoryIndexResponse* response) override {
    if (!Authorized(*context)) return Refused();
    *response->add_models() = Broken();
    return grpc::Status::OK;
  }

  grpc::Status LoadModel(grpc::ServerContext* context,
                         const v1::LoadModelRequest* request,
                         v1::LoadModelResponse* response) override {
    if (!Authorized(*context)) return Refused();
    if (request->model() == "broken") {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "broken: version 3: config.json: bad hidden_size");
    }
    response->mutable_model()->set_name(request->model());
    v1::VersionStatus* v = response->mutable_model()->add_versions();
    v->set_version("1");
    v->set_state(v1::VERSION_STATE_READY);
    return grpc::Status::OK;
  }

  grpc::Status UnloadModel(grpc::ServerContext* context,
                           const v1::UnloadModelRequest* request,
                           v1::UnloadModelResponse* response) override {
    if (!Authorized(*context)) return Refused();
    v1::RepositoryModel* model = response->mutable_model();
    model->set_name(request->model());
    model->set_unloaded_by_request(true);
    v1::VersionStatus* v = model->add_versions();
    v->set_version("1");
    v->set_state(v1::VERSION_STATE_DRAINING);
    v->set_sessions(2);
    return grpc::Status::OK;
  }

  std::vector<std::string> authorizations() {
    absl::MutexLock lock(&mu_);
    return authorizations_;
  }

 private:
  static v1::RepositoryModel Broken() {
    v1::RepositoryModel model;
    model.set_name("broken");
    v1::VersionStatus* serving = model.add_versions();
    serving->set_version("2");
    serving->set_state(v1::VERSION_STATE_READY);
    v1::VersionStatus* failed = model.add_versions();
    failed->set_version("3");
    failed->set_state(v1::VERSION_STATE_FAILED);
    failed->set_reason("config.json: bad hidden_size");
    return model;
  }

  static grpc::Status Refused() {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "not an admin token");
  }

  bool Authorized(const grpc::ServerContext& context) {
    std::vector<std::string> seen;
    for (const auto& [key, value] : context.client_metadata()) {
      if (key == "authorization") seen.emplace_back(value.data(), value.size());
    }
    absl::MutexLock lock(&mu_);
    authorizations_.insert(authorizations_.end(), seen.begin(), seen.end());
    return seen.size() == 1 && seen[0] == std::string("Bearer ") + kAdminToken;
  }

  absl::Mutex mu_;
  std::vector<std::string> authorizations_ ABSL_GUARDED_BY(mu_);
};

// A file of this process's own: tests run in parallel, in other processes,
// and would otherwise rewrite each other's token files.
std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path =
      ::testing::TempDir() + std::to_string(getpid()) + "." + name;
  std::ofstream(path) << text;
  return path;
}

class RepositoryCallTest : public ::testing::Test {
 protected:
  // Starts a server on 127.0.0.1 with a free port, with the stand-in
  // service or, when `with_repository` is false, none of its own (a
  // generic service, which answers UNIMPLEMENTED, stands in for the rest).
  void Start(bool with_repository) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    if (with_repository) {
      builder.RegisterService(&repository_);
    } else {
      builder.RegisterCallbackGenericService(&generic_);
    }
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = "127.0.0.1:" + std::to_string(port);
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  // A connection sending `admin_token` to Repository calls, and an
  // inference token to the others.
  std::unique_ptr<Connection> Connect(const std::string& admin_token) {
    CommonOptions options;
    options.server = address_;
    options.auth_token_file = WriteFile("inference.token", "inference-token\n");
    options.admin_token_file = WriteFile("admin.token", admin_token + "\n");
    auto connection = Connection::Create(options);
    EXPECT_TRUE(connection.ok()) << connection.status();
    return connection.ok() ? *std::move(connection) : nullptr;
  }

  StandInRepository repository_;
  grpc::CallbackGenericService generic_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(RepositoryCallTest, SendsTheAdminTokenAloneAndPrintsTheIndex) {
  Start(/*with_repository=*/true);
  auto connection = Connect(kAdminToken);
  ASSERT_NE(connection, nullptr);
  const RepositoryOutcome outcome = CallRepository(
      *connection, {RepositoryAction::Verb::kIndex, ""}, "admin.token");
  ASSERT_TRUE(outcome.status.ok()) << outcome.status;
  EXPECT_EQ(
      outcome.text,
      "MODEL   VERSION  STATE   SESSIONS  REASON\n"
      "broken  2        ready\n"
      "broken  3        failed            config.json: bad hidden_size\n");
  EXPECT_THAT(repository_.authorizations(),
              ElementsAre(std::string("Bearer ") + kAdminToken));
}

TEST_F(RepositoryCallTest, ARefusedAdminTokenIsSaidSo) {
  Start(/*with_repository=*/true);
  auto connection = Connect("inference-token");
  ASSERT_NE(connection, nullptr);
  const RepositoryOutcome outcome = CallRepository(
      *connection, {RepositoryAction::Verb::kLoad, "sine"}, "admin.token");
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(outcome.status.message(),
              HasSubstr("LoadModel: the server refused the admin token of "
                        "--admin-token-file \"admin.token\""));
  EXPECT_THAT(outcome.status.message(), HasSubstr("not an admin token"));
  EXPECT_EQ(outcome.text, "");
}

TEST_F(RepositoryCallTest, AServerWithoutTheServiceHasNoAdminTokens) {
  Start(/*with_repository=*/false);
  auto connection = Connect(kAdminToken);
  ASSERT_NE(connection, nullptr);
  const RepositoryOutcome outcome = CallRepository(
      *connection, {RepositoryAction::Verb::kUnload, "sine"}, "admin.token");
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(outcome.status.message(),
              HasSubstr("UnloadModel: the server does not offer the "
                        "repository service: it has no admin tokens "
                        "configured (start it with --admin-tokens-file)"));
}

TEST_F(RepositoryCallTest, AFailedLoadShowsTheModelAsTheIndexHasIt) {
  Start(/*with_repository=*/true);
  auto connection = Connect(kAdminToken);
  ASSERT_NE(connection, nullptr);
  const RepositoryOutcome outcome = CallRepository(
      *connection, {RepositoryAction::Verb::kLoad, "broken"}, "admin.token");
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(outcome.status.message(),
            "LoadModel: broken: version 3: config.json: bad hidden_size");
  EXPECT_THAT(outcome.text, HasSubstr("broken  2        ready\n"));
  EXPECT_THAT(outcome.text, HasSubstr("broken  3        failed"));
}

TEST_F(RepositoryCallTest, LoadAndUnloadPrintTheModel) {
  Start(/*with_repository=*/true);
  auto connection = Connect(kAdminToken);
  ASSERT_NE(connection, nullptr);
  const RepositoryOutcome loaded = CallRepository(
      *connection, {RepositoryAction::Verb::kLoad, "sine"}, "admin.token");
  ASSERT_TRUE(loaded.status.ok()) << loaded.status;
  EXPECT_EQ(loaded.text,
            "MODEL  VERSION  STATE  SESSIONS  REASON\n"
            "sine   1        ready\n");
  const RepositoryOutcome unloaded = CallRepository(
      *connection, {RepositoryAction::Verb::kUnload, "sine"}, "admin.token");
  ASSERT_TRUE(unloaded.status.ok()) << unloaded.status;
  EXPECT_THAT(unloaded.text,
              HasSubstr("sine   1        draining  2 sessions  unloaded by "
                        "request; 'rnnctl repository load sine' serves it "
                        "again\n"));
}

}  // namespace
}  // namespace rnnserve::client
