#include "client/common_flags.h"

#include <cstdio>

namespace rnnserve::client {

void AddCommonFlags(FlagSet& flags, CommonOptions* options) {
  flags.String("server", &options->server, "Server address, HOST:PORT.");
  flags.Duration("timeout", &options->timeout,
                 "Deadline of each call (of each whole stream for streaming "
                 "calls); 0 means none.");
  flags.Duration("connect-timeout", &options->connect_timeout,
                 "How long to wait for the connection to the server before "
                 "the first call, retrying failed attempts; 0 means no "
                 "wait.");
  flags.Bool("tls", &options->tls,
             "Connect with TLS, trusting the system's root certificates "
             "(implied by --tls-ca, --tls-cert).");
  flags.String("tls-ca", &options->tls_ca,
               "PEM file of the certificate authority that signed the "
               "server's certificate.");
  flags.String("tls-cert", &options->tls_cert,
               "PEM client certificate for mutual TLS (with --tls-key).");
  flags.String("tls-key", &options->tls_key, "PEM private key of --tls-cert.");
  flags.String("tls-server-name", &options->tls_server_name,
               "Host name to expect in the server's certificate, when it "
               "differs from the host in --server.");
  flags.String("auth-token-file", &options->auth_token_file,
               "File holding a bearer token, sent on every call as "
               "'authorization: Bearer <token>'.");
}

absl::StatusOr<CommandLine> ParseCommandLine(
    FlagSet& flags, const std::vector<std::string>& args) {
  absl::StatusOr<std::vector<std::string>> positional = flags.Parse(args);
  if (!positional.ok()) return positional.status();
  CommandLine line;
  line.positional = *std::move(positional);
  if (flags.help_requested()) {
    line.help = true;
    std::fputs(flags.Help().c_str(), stdout);
  }
  return line;
}

}  // namespace rnnserve::client
