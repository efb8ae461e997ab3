// rnnctl models [NAME]: the models the server has loaded.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/common_flags.h"
#include "client/connection.h"
#include "client/model_info.h"
#include "client/table.h"
#include "server/common/status_macros.h"

namespace rnnserve::client {
namespace {

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::fputs(FormatTable(rows).c_str(), stdout);
}

void PrintList(const v1::ListModelsResponse& response) {
  if (response.models().empty()) {
    std::printf("(no models loaded)\n");
    return;
  }
  PrintTable(ModelListRows(response));
}

}  // namespace

absl::Status RunModels(const std::vector<std::string>& args) {
  CommonOptions common;
  FlagSet flags("rnnctl models [flags] [NAME]",
                "Lists the models the server has loaded, as a table; with "
                "NAME, describes that model in full.");
  AddCommonFlags(flags, &common);
  ASSIGN_OR_RETURN(CommandLine line, ParseCommandLine(flags, args));
  if (line.help) return absl::OkStatus();
  if (line.positional.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected at most one model name, got ",
                     absl::StrJoin(line.positional, " ")));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection,
                   Connection::Create(common));

  if (line.positional.size() == 1) {
    ASSIGN_OR_RETURN(v1::ModelInfo info,
                     FetchModel(*connection, line.positional[0]));
    PrintTable(ModelDetailRows(info));
    return absl::OkStatus();
  }
  grpc::ClientContext context;
  connection->Prepare(&context);
  v1::ListModelsResponse response;
  grpc::Status status = connection->inference().ListModels(
      &context, v1::ListModelsRequest(), &response);
  if (!status.ok()) return FromGrpc(status, "ListModels");
  PrintList(response);
  return absl::OkStatus();
}

}  // namespace rnnserve::client
