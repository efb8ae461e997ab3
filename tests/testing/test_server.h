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

  std::shared_ptr<grpc::Channel> NewChannel() const;
  std::unique_ptr<v1::Inference::Stub> NewStub() const;

 private:
  RealClock real_clock_;
  std::vector<model::Model> models_;
  std::unique_ptr<metrics::Metrics> metrics_;
  std::unique_ptr<service::Server> server_;
};

// A context whose call fails after `seconds` instead of hanging a test.
std::unique_ptr<grpc::ClientContext> ContextWithDeadline(double seconds = 30);

}  // namespace rnnserve::testing

#endif  // RNNSERVE_TESTS_TESTING_TEST_SERVER_H_
