// One `rnnctl repository` action over a Connection: the Repository call
// made with the admin token, and the text to print. Separate from the
// command so that tests run it against a server of their own.
// Thread-compatible: one call per invocation, on the connection's channel 0.
#ifndef RNNSERVE_CLIENT_REPOSITORY_CALL_H_
#define RNNSERVE_CLIENT_REPOSITORY_CALL_H_

#include <string>

#include "absl/status/status.h"
#include "client/connection.h"
#include "client/repository_view.h"

namespace rnnserve::client {

struct RepositoryOutcome {
  // The call's result, told as RepositoryCallError tells it.
  absl::Status status;
  // The table to print: the index, or the loaded or unloaded model; after a
  // failed LoadModel, the model as the index then shows it (its failed
  // version, those still serving), when the index answers.
  std::string text;
};

// Runs `action` with connection.PrepareAdmin; `admin_token_file` only names
// the file in errors.
RepositoryOutcome CallRepository(const Connection& connection,
                                 const RepositoryAction& action,
                                 const std::string& admin_token_file);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_REPOSITORY_CALL_H_
