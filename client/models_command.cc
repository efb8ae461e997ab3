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
#include "client/repository_view.h"
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
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "VERSION", "TASK", "CELL", "LAYERS", "BIDIR", "INPUT", "HIDDEN",
       "OUTPUT", "MAX_STEPS", "MAX_BATCH", "VERSIONS"}};
  for (const v1::ModelInfo& m : response.models()) {
    // VERSION: the newest ready version, which answers requests naming
    // none; VERSIONS: every version held, with its state.
    rows.push_back(
        {m.name(), m.version(), TaskName(m.task()), CellName(m.cell()),
         absl::StrCat(m.num_layers()), m.bidirectional() ? "yes" : "no",
         absl::StrCat(m.input_size()), absl::StrCat(m.hidden_size()),
         absl::StrCat(m.output_size()), absl::StrCat(m.max_steps()),
         absl::StrCat(m.batching().max_batch_size()), VersionStates(m)});
  }
  PrintTable(rows);
}

void PrintModel(const v1::ModelInfo& m) {
  const v1::BatchingInfo& b = m.batching();
  std::vector<std::vector<std::string>> rows = {
      {"name:", m.name()},
      {"version:", m.version()},
      {"state:", VersionStateName(m.state())},
      {"versions:", VersionStates(m)},
      {"description:", m.description().empty() ? "(none)" : m.description()},
      {"task:", TaskName(m.task())},
      {"cell:", CellName(m.cell())},
      {"input_size:", absl::StrCat(m.input_size())},
      {"hidden_size:", absl::StrCat(m.hidden_size())},
      {"num_layers:", absl::StrCat(m.num_layers())},
      {"bidirectional:", m.bidirectional() ? "true" : "false"},
      {"output_size:", absl::StrCat(m.output_size())},
      {"max_steps:", absl::StrCat(m.max_steps())},
      {"max_sequences_per_request:",
       absl::StrCat(m.max_sequences_per_request())},
      {"batching.max_batch_size:", absl::StrCat(b.max_batch_size())},
      {"batching.max_queue_delay_us:", absl::StrCat(b.max_queue_delay_us())},
      {"batching.max_queued_items:", absl::StrCat(b.max_queued_items())},
      {"labels:",
       m.labels().empty() ? "(none)" : absl::StrCat(m.labels_size())},
  };
  for (int i = 0; i < m.labels_size(); ++i) {
    rows.push_back({absl::StrCat("  ", i, ":"), m.labels(i)});
  }
  PrintTable(rows);
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
    PrintModel(info);
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
