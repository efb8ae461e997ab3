// Small helpers around the API's model description.
#ifndef RNNSERVE_CLIENT_MODEL_INFO_H_
#define RNNSERVE_CLIENT_MODEL_INFO_H_

#include <string>

#include "absl/status/statusor.h"
#include "client/connection.h"
#include "rnnserve/v1/inference.pb.h"

namespace rnnserve::client {

// "lstm", "gru", "rnn_tanh", "rnn_relu", or "unspecified".
std::string CellName(v1::Cell cell);
// "classification", "regression", or "unspecified".
std::string TaskName(v1::Task task);

// Calls GetModel for `name`.
absl::StatusOr<v1::ModelInfo> FetchModel(const Connection& connection,
                                         const std::string& name);

// The description of `version` of `model` (from its `versions`); `model`
// itself when `version` is empty. NotFound naming the loaded versions when
// the server has not loaded it.
absl::StatusOr<v1::ModelInfo> SelectVersion(const v1::ModelInfo& model,
                                            const std::string& version);

// FailedPrecondition unless `info` is a model for `task`, naming what the
// subcommand needs.
absl::Status CheckTask(const v1::ModelInfo& info, v1::Task task);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_MODEL_INFO_H_
