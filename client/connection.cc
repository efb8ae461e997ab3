#include "client/connection.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"

namespace rnnserve::client {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("--", flag, ": cannot open \"", path, "\""));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(
        absl::StrCat("--", flag, ": cannot read \"", path, "\""));
  }
  return contents.str();
}

bool UsesTls(const CommonOptions& options) {
  return options.tls || !options.tls_ca.empty() || !options.tls_cert.empty() ||
         !options.tls_key.empty() || !options.tls_server_name.empty();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeCredentials(
    const CommonOptions& options) {
  if (!UsesTls(options)) return grpc::InsecureChannelCredentials();
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together: give both for mutual TLS, or "
        "neither");
  }
  grpc::SslCredentialsOptions ssl;
  if (!options.tls_ca.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(options.tls_ca, "tls-ca"));
  }
  if (!options.tls_cert.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_cert_chain,
                     ReadFile(options.tls_cert, "tls-cert"));
    ASSIGN_OR_RETURN(ssl.pem_private_key, ReadFile(options.tls_key, "tls-key"));
  }
  return grpc::SslCredentials(ssl);
}

// "Bearer <token>" from the token in `path` (surrounding white space
// stripped), given by --`flag`; warns when it would travel in clear text.
absl::StatusOr<std::string> ReadAuthorization(const CommonOptions& options,
                                              const std::string& path,
                                              const std::string& flag) {
  ASSIGN_OR_RETURN(std::string token, ReadFile(path, flag));
  token = std::string(absl::StripAsciiWhitespace(token));
  if (token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": \"", path, "\" is empty"));
  }
  if (!UsesTls(options)) {
    std::fprintf(stderr,
                 "rnnctl: warning: sending the token of --%s without TLS, in "
                 "clear text\n",
                 flag.c_str());
  }
  return absl::StrCat("Bearer ", token);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::Create(
    const CommonOptions& options, int num_channels) {
  if (options.server.empty()) {
    return absl::InvalidArgumentError("--server: expected HOST:PORT");
  }
  if (num_channels < 1) {
    return absl::InvalidArgumentError("the number of channels must be >= 1");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                   MakeCredentials(options));

  std::unique_ptr<Connection> connection(new Connection());
  connection->timeout_ = options.timeout;
  if (!options.auth_token_file.empty()) {
    ASSIGN_OR_RETURN(
        connection->authorization_,
        ReadAuthorization(options, options.auth_token_file, "auth-token-file"));
  }
  if (!options.admin_token_file.empty()) {
    ASSIGN_OR_RETURN(connection->admin_authorization_,
                     ReadAuthorization(options, options.admin_token_file,
                                       "admin-token-file"));
  }

  for (int i = 0; i < num_channels; ++i) {
    grpc::ChannelArguments args;
    // Channels with equal arguments would otherwise share one connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateCustomChannel(options.server, credentials, args);
    connection->stubs_.push_back(v1::Inference::NewStub(channel));
    connection->channels_.push_back(std::move(channel));
  }
  connection->repository_ =
      v1::Repository::NewStub(connection->channels_.front());
  if (options.connect_timeout > absl::ZeroDuration()) {
    const absl::Time deadline = absl::Now() + options.connect_timeout;
    for (const auto& channel : connection->channels_) {
      if (!channel->WaitForConnected(absl::ToChronoTime(deadline))) {
        return absl::UnavailableError(absl::StrCat(
            "cannot connect to ", options.server, " within ",
            absl::FormatDuration(options.connect_timeout),
            " (--connect-timeout): is the server running there, and do the "
            "--tls flags match its set-up?"));
      }
    }
  }
  return connection;
}

void Connection::Prepare(grpc::ClientContext* context) const {
  PrepareWithDeadline(context, timeout_ == absl::ZeroDuration()
                                   ? absl::InfiniteFuture()
                                   : absl::Now() + timeout_);
}

void Connection::PrepareWithDeadline(grpc::ClientContext* context,
                                     absl::Time deadline) const {
  if (deadline != absl::InfiniteFuture()) {
    context->set_deadline(absl::ToChronoTime(deadline));
  }
  if (!authorization_.empty()) {
    context->AddMetadata("authorization", authorization_);
  }
}

void Connection::PrepareAdmin(grpc::ClientContext* context) const {
  if (timeout_ != absl::ZeroDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  }
  if (!admin_authorization_.empty()) {
    context->AddMetadata("authorization", admin_authorization_);
  }
}

absl::Status FromGrpc(const grpc::Status& status, std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(
      static_cast<absl::StatusCode>(status.error_code()),
      absl::StrCat(std::string(what), ": ", status.error_message()));
}

std::string StatusCodeLabel(int code) {
  return absl::StrCat(
      absl::StatusCodeToString(static_cast<absl::StatusCode>(code)), " (", code,
      ")");
}

}  // namespace rnnserve::client
