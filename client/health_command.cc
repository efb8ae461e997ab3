// rnnctl health [SERVICE]: asks the gRPC health service, as probes do.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/common_flags.h"
#include "client/connection.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/common/status_macros.h"

namespace rnnserve::client {

absl::Status RunHealth(const std::vector<std::string>& args) {
  CommonOptions common;
  FlagSet flags("rnnctl health [flags] [SERVICE]",
                "Calls grpc.health.v1.Health/Check and prints the status of "
                "SERVICE: empty (the default) for the server as a whole, "
                "\"rnnserve.v1.Inference\", or a model's name. Exits 0 only "
                "when it is SERVING, so it serves as a container health "
                "check. Needs no bearer token.");
  AddCommonFlags(flags, &common);
  ASSIGN_OR_RETURN(CommandLine line, ParseCommandLine(flags, args));
  if (line.help) return absl::OkStatus();
  if (line.positional.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected at most one service name, got ",
                     absl::StrJoin(line.positional, " ")));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection,
                   Connection::Create(common));
  grpc::health::v1::HealthCheckRequest request;
  if (!line.positional.empty()) request.set_service(line.positional[0]);
  grpc::ClientContext context;
  connection->Prepare(&context);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status =
      grpc::health::v1::Health::NewStub(connection->channel(0))
          ->Check(&context, request, &response);
  if (!status.ok()) return FromGrpc(status, "Health/Check");
  const std::string name =
      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
          response.status());
  std::printf("%s\n", name.c_str());
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(
        absl::StrCat("\"", request.service(), "\" is ", name, ", not SERVING"));
  }
  return absl::OkStatus();
}

}  // namespace rnnserve::client
