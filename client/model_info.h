// Small helpers around the API's model description.
#ifndef RNNSERVE_CLIENT_MODEL_INFO_H_
#define RNNSERVE_CLIENT_MODEL_INFO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/connection.h"
#include "rnnserve/v1/inference.pb.h"

namespace rnnserve::client {

// "lstm", "gru", "rnn_tanh", "rnn_relu", or "unspecified".
std::string CellName(v1::Cell cell);
// "classification", "regression", or "unspecified".
std::string TaskName(v1::Task task);

// What a step of `model` is: "4 values" ("1 value"; input_size per step) or
// "token ids < 25" (one id per step, below the vocabulary_size).
std::string InputSummary(const v1::ModelInfo& model);
// The head's modules in order, space-separated ("linear:64 relu linear:4"),
// or "linear" for the single linear head.
std::string HeadSummary(const v1::ModelInfo& model);
// The classification readout; "-" for a regression model, which reads every
// step.
std::string ReadoutSummary(const v1::ModelInfo& model);
// The regression output activation ("none", "sigmoid", "softmax"); "-" for
// a classification model.
std::string ActivationSummary(const v1::ModelInfo& model);
// The labels, comma-separated, or "first,... (N)" when they are long; "-"
// without labels.
std::string LabelsSummary(const v1::ModelInfo& model);

// `rnnctl models`: a header row, then one row per model.
std::vector<std::vector<std::string>> ModelListRows(
    const v1::ListModelsResponse& response);
// `rnnctl models NAME`: one "field:", value row per line.
std::vector<std::vector<std::string>> ModelDetailRows(const v1::ModelInfo& m);

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
