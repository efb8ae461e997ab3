#include "tests/testing/test_server.h"

#include <grpcpp/generic/generic_stub.h>

#include <chrono>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/model/loader.h"
#include "tests/testing/golden.h"

namespace rnnserve::testing {

std::vector<model::Model> LoadModels(const std::vector<std::string>& folders) {
  std::vector<model::Model> models;
  for (const std::string& folder : folders) {
    auto m = model::LoadModel(SourceDir() / folder);
    EXPECT_TRUE(m.ok()) << m.status();
    if (m.ok()) models.push_back(std::move(*m));
  }
  return models;
}

TestServer::TestServer(std::vector<model::Model> models,
                       service::ServerOptions options,
                       const Clock* session_clock)
    : models_(std::move(models)) {
  options.grpc_address = "127.0.0.1:0";
  // Only what the tests use: start-up stays quick.
  options.warmup_steps = {1};
  std::vector<model::ModelConfig> configs;
  for (const model::Model& m : models_) configs.push_back(m.config);
  metrics_ = std::make_unique<metrics::Metrics>(
      metrics::BuildInfo{"test", "test"}, configs);
  auto server =
      service::Server::Start(options, models_, metrics_.get(),
                             session_clock ? *session_clock : real_clock_);
  EXPECT_TRUE(server.ok()) << server.status();
  if (server.ok()) server_ = std::move(*server);
}

TestServer::~TestServer() {
  if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
}

std::string TestServer::address() const {
  return "127.0.0.1:" + std::to_string(server_->port());
}

std::shared_ptr<grpc::Channel> TestServer::NewChannel() const {
  // A channel argument that differs per channel keeps gRPC from sharing one
  // connection between channels, so "several clients" are several.
  static std::atomic<int> next{0};
  grpc::ChannelArguments args;
  args.SetInt("rnnserve.test.channel", next++);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      address(), grpc::InsecureChannelCredentials(), args);
  WaitUntilConnected(*channel);
  return channel;
}

std::unique_ptr<v1::Inference::Stub> TestServer::NewStub() const {
  return v1::Inference::NewStub(NewChannel());
}

namespace {

std::chrono::system_clock::time_point SecondsFromNow(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

}  // namespace

bool WaitUntilConnected(grpc::Channel& channel, double seconds) {
  return channel.WaitForConnected(SecondsFromNow(seconds));
}

std::unique_ptr<grpc::ClientContext> ContextWithDeadline(double seconds) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(SecondsFromNow(seconds));
  return context;
}

v1::ClassifyRequest GoldenClassifyRequest(const Golden& golden,
                                          const std::string& model,
                                          const std::string& version) {
  v1::ClassifyRequest request;
  request.set_model(model);
  if (!version.empty()) request.set_model_version(version);
  const std::vector<int64_t>& lengths = golden.I64("lengths");
  if (golden.has("tokens")) {  // A model that reads token ids.
    const int64_t t_max = golden.shapes.at("tokens")[1];
    const std::vector<int64_t>& tokens = golden.I64("tokens");
    for (size_t i = 0; i < lengths.size(); ++i) {
      v1::Sequence* s = request.add_sequences();
      s->set_steps(lengths[i]);
      const int64_t* row = tokens.data() + i * t_max;
      s->mutable_token_ids()->Add(row, row + lengths[i]);
    }
    return request;
  }
  const std::vector<int64_t>& shape = golden.shapes.at("inputs");
  const std::vector<float>& inputs = golden.F32("inputs");
  for (size_t i = 0; i < lengths.size(); ++i) {
    v1::Sequence* s = request.add_sequences();
    s->set_steps(lengths[i]);
    const float* row = inputs.data() + i * shape[1] * shape[2];
    s->mutable_values()->Add(row, row + lengths[i] * shape[2]);
  }
  return request;
}

v1::RegressRequest ChunkRequest(const std::vector<float>& x, size_t from,
                                size_t steps, const std::string& model,
                                const std::string& token) {
  v1::RegressRequest r;
  r.set_model(model);
  r.set_session_token(token);
  r.set_steps(steps);
  r.mutable_values()->Add(x.begin() + from, x.begin() + from + steps);
  return r;
}

grpc::Status CallRaw(grpc::Channel& channel, grpc::ClientContext& context,
                     const std::string& method, const std::string& bytes,
                     std::string* response_bytes) {
  grpc::GenericStub stub(channel.shared_from_this());
  grpc::Slice slice(bytes.data(), bytes.size());
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (response_bytes != nullptr && status.ok()) {
    std::vector<grpc::Slice> slices;
    EXPECT_TRUE(response.Dump(&slices).ok());
    for (const grpc::Slice& part : slices) {
      response_bytes->append(reinterpret_cast<const char*>(part.begin()),
                             part.size());
    }
  }
  return status;
}

}  // namespace rnnserve::testing
