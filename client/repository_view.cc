#include "client/repository_view.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/connection.h"
#include "client/table.h"

namespace rnnserve::client {
namespace {

constexpr char kUsage[] =
    "expected 'index', 'load MODEL' or 'unload MODEL' (see rnnctl "
    "repository --help)";

std::string Sessions(uint64_t count) {
  return absl::StrCat(count, count == 1 ? " session" : " sessions");
}

// A reason on one table line: the server's may span several.
std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

void AppendRows(const v1::RepositoryModel& model,
                std::vector<std::vector<std::string>>* rows) {
  const std::string unloaded =
      absl::StrCat("unloaded by request; 'rnnctl repository load ",
                   model.name(), "' serves it again");
  if (model.versions().empty()) {
    rows->push_back(
        {model.name(), "-", "-", "",
         model.unloaded_by_request() ? unloaded : "no version found"});
    return;
  }
  for (const v1::VersionStatus& v : model.versions()) {
    const bool draining = v.state() == v1::VERSION_STATE_DRAINING;
    std::string reason = OneLine(v.reason());
    if (reason.empty() && model.unloaded_by_request()) reason = unloaded;
    rows->push_back({model.name(), v.version(), VersionStateName(v.state()),
                     draining || v.sessions() > 0 ? Sessions(v.sessions()) : "",
                     reason});
  }
}

}  // namespace

absl::StatusOr<RepositoryAction> ParseRepositoryAction(
    const std::vector<std::string>& positional) {
  if (positional.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("missing sub-command: ", kUsage));
  }
  const std::string& verb = positional[0];
  RepositoryAction action;
  if (verb == "index") {
    if (positional.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "index takes no argument, got ",
          absl::StrJoin(positional.begin() + 1, positional.end(), " ")));
    }
    return action;
  }
  if (verb != "load" && verb != "unload") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown sub-command \"", verb, "\": ", kUsage));
  }
  action.verb = verb == "load" ? RepositoryAction::Verb::kLoad
                               : RepositoryAction::Verb::kUnload;
  if (positional.size() != 2 || positional[1].empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        verb,
        ": expected one model name (the model's folder in the "
        "repository), got ",
        positional.size() < 2
            ? std::string("none")
            : absl::StrJoin(positional.begin() + 1, positional.end(), " ")));
  }
  action.model = positional[1];
  return action;
}

std::string VersionStateName(v1::VersionState state) {
  switch (state) {
    case v1::VERSION_STATE_LOADING:
      return "loading";
    case v1::VERSION_STATE_READY:
      return "ready";
    case v1::VERSION_STATE_DRAINING:
      return "draining";
    case v1::VERSION_STATE_UNLOADED:
      return "unloaded";
    case v1::VERSION_STATE_FAILED:
      return "failed";
    default:
      return "unspecified";
  }
}

std::string VersionStates(const v1::ModelInfo& model) {
  if (model.versions().empty()) return model.version();
  return absl::StrJoin(
      model.versions(), ", ", [](std::string* out, const v1::ModelInfo& v) {
        out->append(v.version());
        if (v.state() == v1::VERSION_STATE_UNSPECIFIED) return;
        absl::StrAppend(out, " ", VersionStateName(v.state()));
        if (v.state() == v1::VERSION_STATE_DRAINING) {
          absl::StrAppend(out, " (", Sessions(v.sessions()), ")");
        }
      });
}

std::string FormatRepository(const v1::RepositoryIndexResponse& index) {
  if (index.models().empty()) return "(no models in the repository)\n";
  std::vector<std::vector<std::string>> rows = {
      {"MODEL", "VERSION", "STATE", "SESSIONS", "REASON"}};
  for (const v1::RepositoryModel& model : index.models()) {
    AppendRows(model, &rows);
  }
  return FormatTable(rows);
}

absl::Status RepositoryCallError(const grpc::Status& status,
                                 const std::string& rpc,
                                 const std::string& admin_token_file) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNIMPLEMENTED:
      return absl::UnimplementedError(absl::StrCat(
          rpc,
          ": the server does not offer the repository service: it has no "
          "admin tokens configured (start it with --admin-tokens-file) "
          "(server: ",
          status.error_message(), ")"));
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::UnauthenticatedError(absl::StrCat(
          rpc, ": the server refused the admin token of --admin-token-file \"",
          admin_token_file,
          "\": it must be one of the server's --admin-tokens-file (inference "
          "tokens are not admin tokens) (server: ",
          status.error_message(), ")"));
    default:
      return FromGrpc(status, rpc);
  }
}

}  // namespace rnnserve::client
