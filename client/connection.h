// The one place where rnnctl builds its channels: from the common flags
// (address, TLS, bearer token) to ready stubs and call contexts. New
// transport options belong here and nowhere else.
#ifndef RNNSERVE_CLIENT_CONNECTION_H_
#define RNNSERVE_CLIENT_CONNECTION_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/common_flags.h"
#include "rnnserve/v1/inference.grpc.pb.h"

namespace rnnserve::client {

// Channels to one server and the settings every call shares. Immutable after
// Create, so thread-safe: stubs and Prepare* may be used from any thread.
class Connection {
 public:
  // Builds `num_channels` channels to options.server. Each channel gets its
  // own subchannel pool, hence its own TCP connection, so that several
  // channels really spread load. Reads the TLS and token files now; a
  // missing or unreadable file is an error naming it. Then waits up to
  // options.connect_timeout for every channel to connect (UNAVAILABLE if
  // one does not), so that one failed connection attempt, which gRPC retries
  // after a backoff, does not fail the first calls.
  static absl::StatusOr<std::unique_ptr<Connection>> Create(
      const CommonOptions& options, int num_channels = 1);

  int num_channels() const { return static_cast<int>(channels_.size()); }
  const std::shared_ptr<grpc::Channel>& channel(int i) const {
    return channels_[i % channels_.size()];
  }
  // The Inference stub on channel i (modulo the number of channels).
  v1::Inference::Stub& inference(int i = 0) const {
    return *stubs_[i % stubs_.size()];
  }
  // The Repository stub, on channel 0.
  v1::Repository::Stub& repository() const { return *repository_; }
  absl::Duration timeout() const { return timeout_; }

  // Readies `context` for one call: deadline now + --timeout (none when the
  // timeout is 0) and the bearer token, if any.
  void Prepare(grpc::ClientContext* context) const;
  // The same with a given deadline; absl::InfiniteFuture() means none.
  void PrepareWithDeadline(grpc::ClientContext* context,
                           absl::Time deadline) const;
  // Readies `context` for a Repository call: deadline as Prepare, and the
  // admin token (options.admin_token_file), if any, instead of the bearer
  // token.
  void PrepareAdmin(grpc::ClientContext* context) const;

 private:
  Connection() = default;

  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<v1::Inference::Stub>> stubs_;
  std::unique_ptr<v1::Repository::Stub> repository_;
  absl::Duration timeout_;
  std::string authorization_;        // "Bearer <token>", or empty.
  std::string admin_authorization_;  // "Bearer <admin token>", or empty.
};

// `status` as an absl::Status (gRPC and absl share the code numbers), with
// `what` (usually the RPC's name) before the server's message.
absl::Status FromGrpc(const grpc::Status& status, std::string_view what);

// "NOT_FOUND (5)" for a numeric status code.
std::string StatusCodeLabel(int code);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_CONNECTION_H_
