// What rnnctl shows of model versions and of the Repository service: the
// parsing of `rnnctl repository` arguments, the table of a repository
// index, a model's versions with their states, and the errors of the
// service told in operator's terms. No I/O and no calls, so that each is
// tested without a server; thread-compatible functions of their arguments.
#ifndef RNNSERVE_CLIENT_REPOSITORY_VIEW_H_
#define RNNSERVE_CLIENT_REPOSITORY_VIEW_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rnnserve/v1/inference.pb.h"

namespace rnnserve::client {

// One `rnnctl repository` sub-command.
struct RepositoryAction {
  enum class Verb { kIndex, kLoad, kUnload };
  Verb verb = Verb::kIndex;
  std::string model;  // kLoad and kUnload: the model's folder name.
};

// `index`, `load MODEL` or `unload MODEL` from the positional arguments;
// InvalidArgument naming what was expected otherwise.
absl::StatusOr<RepositoryAction> ParseRepositoryAction(
    const std::vector<std::string>& positional);

// "loading", "ready", "draining", "unloaded", "failed"; "unspecified" for a
// server that does not report states.
std::string VersionStateName(v1::VersionState state);

// The versions of `model` (ModelInfo.versions, oldest first) with their
// states, e.g. "1 draining (3 sessions), 2 ready"; a version without a
// state (an older server) is its number alone. `model.version()` when the
// list is empty.
std::string VersionStates(const v1::ModelInfo& model);

// The index as a table: MODEL, VERSION, STATE, SESSIONS (of a draining
// version), REASON (of a failed or unloaded one), one row per version, and
// one row for a model that holds none.
std::string FormatRepository(const v1::RepositoryIndexResponse& index);

// The error of a failed Repository call `rpc`: UNIMPLEMENTED says that the
// server has no admin tokens configured, UNAUTHENTICATED that the admin
// token in `admin_token_file` was refused; others as FromGrpc. Each keeps
// the server's message.
absl::Status RepositoryCallError(const grpc::Status& status,
                                 const std::string& rpc,
                                 const std::string& admin_token_file);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_REPOSITORY_VIEW_H_
