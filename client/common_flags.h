// The flags every rnnctl subcommand shares: where the server is, how long a
// call may take, and how to authenticate. Channel creation reads only these.
#ifndef RNNSERVE_CLIENT_COMMON_FLAGS_H_
#define RNNSERVE_CLIENT_COMMON_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/common/flags.h"

namespace rnnserve::client {

struct CommonOptions {
  // host:port of the server; the server listens on port 50051 by default.
  std::string server = "localhost:50051";
  // Deadline of each unary call and of each stream; 0 means none.
  absl::Duration timeout = absl::Seconds(10);
  // How long to wait for the connection before the first call; a failed
  // attempt is retried (with gRPC's backoff) until then. 0: no wait, the
  // first call fails at once if the server cannot be reached.
  absl::Duration connect_timeout = absl::Seconds(10);
  // TLS with the system's root certificates (implied by the --tls-* files).
  bool tls = false;
  std::string tls_ca;           // PEM file of the root CA to trust.
  std::string tls_cert;         // PEM client certificate, for mutual TLS.
  std::string tls_key;          // PEM private key of tls_cert.
  std::string tls_server_name;  // Name expected in the server certificate.
  // File holding a bearer token sent as `authorization: Bearer <token>`.
  std::string auth_token_file;
  // File holding an admin token, sent instead of the bearer token on calls
  // of the Repository service (Connection::PrepareAdmin). Only `rnnctl
  // repository` binds it (--admin-token-file); AddCommonFlags does not.
  std::string admin_token_file;
};

// Binds the common flags to *options, which must outlive `flags`.
void AddCommonFlags(FlagSet& flags, CommonOptions* options);

// The result of parsing a subcommand's arguments.
struct CommandLine {
  bool help = false;  // --help was given; the help has been printed.
  std::vector<std::string> positional;
};

// Parses `args` with `flags`; on --help prints the help to stdout.
absl::StatusOr<CommandLine> ParseCommandLine(
    FlagSet& flags, const std::vector<std::string>& args);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_COMMON_FLAGS_H_
