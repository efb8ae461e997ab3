#include "client/model_info.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace rnnserve::client {

std::string CellName(v1::Cell cell) {
  switch (cell) {
    case v1::CELL_LSTM:
      return "lstm";
    case v1::CELL_GRU:
      return "gru";
    case v1::CELL_RNN_TANH:
      return "rnn_tanh";
    case v1::CELL_RNN_RELU:
      return "rnn_relu";
    default:
      return "unspecified";
  }
}

std::string TaskName(v1::Task task) {
  switch (task) {
    case v1::TASK_CLASSIFICATION:
      return "classification";
    case v1::TASK_REGRESSION:
      return "regression";
    default:
      return "unspecified";
  }
}

absl::StatusOr<v1::ModelInfo> FetchModel(const Connection& connection,
                                         const std::string& name) {
  grpc::ClientContext context;
  connection.Prepare(&context);
  v1::GetModelRequest request;
  request.set_model(name);
  v1::ModelInfo info;
  grpc::Status status =
      connection.inference().GetModel(&context, request, &info);
  if (!status.ok()) return FromGrpc(status, "GetModel");
  return info;
}

absl::StatusOr<v1::ModelInfo> SelectVersion(const v1::ModelInfo& model,
                                            const std::string& version) {
  if (version.empty()) return model;
  std::vector<std::string> loaded;
  for (const v1::ModelInfo& v : model.versions()) {
    if (v.version() == version) return v;
    loaded.push_back(v.version());
  }
  if (loaded.empty()) loaded.push_back(model.version());
  return absl::NotFoundError(absl::StrCat(
      "--model-version: model \"", model.name(), "\" has no version \"",
      version, "\" loaded; loaded: ", absl::StrJoin(loaded, ", ")));
}

absl::Status CheckTask(const v1::ModelInfo& info, v1::Task task) {
  if (info.task() == task) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("model \"", info.name(), "\" is a ", TaskName(info.task()),
                   " model; this command needs a ", TaskName(task),
                   " model (see rnnctl models)"));
}

}  // namespace rnnserve::client
