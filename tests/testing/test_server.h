// A real rnnserve server in the test process, on 127.0.0.1 with a free port,
// and real channels to it.
#ifndef RNNSERVE_TESTS_TESTING_TEST_SERVER_H_
#define RNNSERVE_TESTS_TESTING_TEST_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "rnnserve/v1/inference.grpc.pb.h"
#include "server/common/clock.h"
#include "server/metrics/metrics.h"
#include "server/model/model.h"
#include "server/service/server.h"
#include "tests/testing/golden.h"

namespace rnnserve::testing {

// Loads models by folder: "models/fashion_lstm" or "tests/goldens/x",
// relative to the repository root. Fails the test on error.
std::vector<model::Model> LoadModels(const std::vector<std::string>& folders);

// Owns a started server (with real metrics) and makes channels to it.
class TestServer {
 public:
  // Starts on 127.0.0.1:0. `session_clock` (if given) ages the sessions
  // and must outlive the server; otherwise the real clock does.
  TestServer(std::vector<model::Model> models,
             service::ServerOptions options = {},
             const Clock* session_clock = nullptr);
  ~TestServer();

  bool ok() const { return server_ != nullptr; }
  service::Server& server() { return *server_; }
  metrics::Metrics& metrics() { return *metrics_; }
  std::string address() const;

  // A channel of its own connection, connected when the server is up (see
  // WaitUntilConnected).
  std::shared_ptr<grpc::Channel> NewChannel() const;
  std::unique_ptr<v1::Inference::Stub> NewStub() const;

 private:
  RealClock real_clock_;
  std::vector<model::Model> models_;
  std::unique_ptr<metrics::Metrics> metrics_;
  std::unique_ptr<service::Server> server_;
};

// Waits until `channel` is connected; false if it is not within `seconds`.
// A call on a fresh channel fails at once with UNAVAILABLE if the first
// connection attempt failed, and Debian's gRPC 1.51 can fail one that
// is under way: its tcp_client_posix.cc reads connect()'s errno only after
// calls that may overwrite it (seen as "connect: No such file or
// directory", about one run in 30 of 64 fresh channels). Waiting rides out
// gRPC's retry, as rnnctl's --connect-timeout does.
bool WaitUntilConnected(grpc::Channel& channel, double seconds = 10);

// A context whose call fails after `seconds` instead of hanging a test.
std::unique_ptr<grpc::ClientContext> ContextWithDeadline(double seconds = 30);

// A Regress/RegressChunk request of x[from, from + steps) for a model of
// input size 1, such as sine_rnn.
v1::RegressRequest ChunkRequest(const std::vector<float>& x, size_t from,
                                size_t steps, const std::string& model,
                                const std::string& token);

// A Classify request of a golden case's sequences (each at its own length)
// for `model`, at `version` when not empty.
v1::ClassifyRequest GoldenClassifyRequest(const Golden& golden,
                                          const std::string& model,
                                          const std::string& version = "");

// Calls `method` (e.g. "/rnnserve.v1.Inference/Classify") on `channel` with
// one message of raw bytes, as a client built from other definitions could
// (for a streaming method: one request, then a half-close). The answer's
// bytes go to `response_bytes` when it is given and the call succeeds.
grpc::Status CallRaw(grpc::Channel& channel, grpc::ClientContext& context,
                     const std::string& method, const std::string& bytes,
                     std::string* response_bytes = nullptr);

}  // namespace rnnserve::testing

#endif  // RNNSERVE_TESTS_TESTING_TEST_SERVER_H_
