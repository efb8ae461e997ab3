// rnnctl's Connection against real sockets: it waits for a server that is
// not up yet (its first attempt demonstrably fails), and names the address when
// none comes.
#include "client/connection.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"

namespace rnnserve::client {
namespace {

using ::testing::HasSubstr;

// A port on 127.0.0.1 that was free a moment ago.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), len), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  return ntohs(addr.sin_port);
}

// A gRPC server with only the standard health service, on `address`. (A
// server needs one service of its own besides; the generic one answers
// UNIMPLEMENTED to anything else.)
std::unique_ptr<grpc::Server> StartHealthServer(
    const std::string& address, grpc::CallbackGenericService* generic) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.RegisterCallbackGenericService(generic);
  return builder.BuildAndStart();
}

// One health check over the connection's first channel.
grpc::Status CheckHealth(const Connection& connection,
                         grpc::health::v1::HealthCheckResponse* response) {
  grpc::ClientContext context;
  connection.Prepare(&context);
  return grpc::health::v1::Health::NewStub(connection.channel(0))
      ->Check(&context, {}, response);
}

// A plain TCP listener on 127.0.0.1 (a port of its own choosing) that
// stands in for the server before it is up: it accepts the client's first
// connection attempt and resets it, with no HTTP/2 behind it.
class Gatekeeper {
 public:
  Gatekeeper() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(listen(fd_, 4), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~Gatekeeper() { Close(); }

  int port() const { return port_; }

  // Waits up to `timeout_ms` for a connection attempt, resets it (no
  // TIME_WAIT is left on the port) and stops listening. False if no
  // attempt came.
  bool RefuseFirstAttempt(int timeout_ms) {
    pollfd ready{fd_, POLLIN, 0};
    if (poll(&ready, 1, timeout_ms) != 1) return false;
    const int connection = accept(fd_, nullptr, nullptr);
    if (connection < 0) return false;
    const linger reset{1, 0};
    setsockopt(connection, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    close(connection);
    Close();
    return true;
  }

 private:
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  int fd_ = -1;
  int port_ = 0;
};

TEST(ConnectionTest, WaitsForAServerThatComesUpLate) {
  // The port is held by the gatekeeper until the client has tried it once
  // and failed; only then does the server start there, so the client can
  // only succeed by retrying.
  Gatekeeper gate;
  CommonOptions options;
  options.server = "127.0.0.1:" + std::to_string(gate.port());
  options.connect_timeout = absl::Seconds(20);
  grpc::CallbackGenericService generic;
  std::unique_ptr<grpc::Server> server;
  bool first_attempt_failed = false;
  std::thread late([&] {
    first_attempt_failed = gate.RefuseFirstAttempt(/*timeout_ms=*/20'000);
    if (first_attempt_failed) {
      server = StartHealthServer(options.server, &generic);
    }
  });
  auto connection = Connection::Create(options);
  late.join();
  ASSERT_TRUE(first_attempt_failed) << "the client never tried the port";
  ASSERT_NE(server, nullptr);
  ASSERT_TRUE(connection.ok()) << connection.status();
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = CheckHealth(**connection, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  server->Shutdown();
}

TEST(ConnectionTest, NamesTheAddressWhenNothingListens) {
  CommonOptions options;
  options.server = "127.0.0.1:" + std::to_string(FreePort());
  options.connect_timeout = absl::Milliseconds(300);
  auto connection = Connection::Create(options, /*num_channels=*/2);
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(connection.status().message(), HasSubstr(options.server));
  EXPECT_THAT(connection.status().message(), HasSubstr("--connect-timeout"));
}

TEST(ConnectionTest, WithoutAWaitTheFirstCallReportsTheFailure) {
  CommonOptions options;
  options.server = "127.0.0.1:" + std::to_string(FreePort());
  options.connect_timeout = absl::ZeroDuration();
  auto connection = Connection::Create(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = CheckHealth(**connection, &response);
  EXPECT_EQ(status.error_code(), grpc::UNAVAILABLE);
}

}  // namespace
}  // namespace rnnserve::client
