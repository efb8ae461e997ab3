#include "client/model_info.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/repository_view.h"

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

std::string InputSummary(const v1::ModelInfo& model) {
  if (model.input_kind() == v1::INPUT_KIND_TOKEN_IDS) {
    return absl::StrCat("token ids < ", model.vocabulary_size());
  }
  return absl::StrCat(model.input_size(),
                      model.input_size() == 1 ? " value" : " values");
}

std::string HeadSummary(const v1::ModelInfo& model) {
  if (model.head().empty()) return "linear";
  return absl::StrJoin(model.head(), " ");
}

std::string ReadoutSummary(const v1::ModelInfo& model) {
  if (model.task() != v1::TASK_CLASSIFICATION) return "-";
  return model.readout().empty() ? "last_output" : model.readout();
}

std::string ActivationSummary(const v1::ModelInfo& model) {
  if (model.task() != v1::TASK_REGRESSION) return "-";
  return model.output_activation().empty() ? "none" : model.output_activation();
}

std::string LabelsSummary(const v1::ModelInfo& model) {
  if (model.labels().empty()) return "-";
  // Long label lists would stretch every row of the table; the model's
  // own view lists them all.
  constexpr size_t kMaxWidth = 32;
  std::string joined = absl::StrJoin(model.labels(), ",");
  if (joined.size() <= kMaxWidth) return joined;
  return absl::StrCat(model.labels(0), ",... (", model.labels_size(), ")");
}

std::vector<std::vector<std::string>> ModelListRows(
    const v1::ListModelsResponse& response) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "VERSION", "TASK", "CELL", "LAYERS", "BIDIR", "INPUT", "HIDDEN",
       "READOUT", "HEAD", "OUTPUT", "ACTIVATION", "LABELS", "MAX_STEPS",
       "MAX_BATCH", "VERSIONS"}};
  for (const v1::ModelInfo& m : response.models()) {
    // VERSION: the newest ready version, which answers requests naming
    // none; VERSIONS: every version held, with its state.
    rows.push_back(
        {m.name(), m.version(), TaskName(m.task()), CellName(m.cell()),
         absl::StrCat(m.num_layers()), m.bidirectional() ? "yes" : "no",
         InputSummary(m), absl::StrCat(m.hidden_size()), ReadoutSummary(m),
         HeadSummary(m), absl::StrCat(m.output_size()), ActivationSummary(m),
         LabelsSummary(m), absl::StrCat(m.max_steps()),
         absl::StrCat(m.batching().max_batch_size()), VersionStates(m)});
  }
  return rows;
}

namespace {

// "characters (60 tokens, unknown "<unk>", lower-cased): ..." or "(none)".
std::string TokenizerSummary(const v1::ModelInfo& m) {
  if (!m.has_tokenizer()) return "(none)";
  const v1::Tokenizer& t = m.tokenizer();
  std::string unknown = "none";
  if (t.has_unknown_id() &&
      t.unknown_id() < static_cast<uint32_t>(t.tokens_size())) {
    unknown = absl::StrCat("\"", t.tokens(t.unknown_id()), "\"");
  }
  return absl::StrCat(t.type(), " (", t.tokens_size(), " tokens, unknown ",
                      unknown, t.lowercase() ? ", lower-cased" : "",
                      "): rnnctl classify/stream --text");
}

}  // namespace

std::vector<std::vector<std::string>> ModelDetailRows(const v1::ModelInfo& m) {
  const v1::BatchingInfo& b = m.batching();
  const bool tokens = m.input_kind() == v1::INPUT_KIND_TOKEN_IDS;
  std::vector<std::vector<std::string>> rows = {
      {"name:", m.name()},
      {"version:", m.version()},
      {"state:", VersionStateName(m.state())},
      {"versions:", VersionStates(m)},
      {"description:", m.description().empty() ? "(none)" : m.description()},
      {"task:", TaskName(m.task())},
      {"cell:", CellName(m.cell())},
      {"input:", tokens
                     ? absl::StrCat("token ids, one per step, in [0, ",
                                    m.vocabulary_size(), ")")
                     : absl::StrCat(m.input_size(), m.input_size() == 1
                                                        ? " value per step"
                                                        : " values per step")},
      {"tokenizer:", TokenizerSummary(m)},
      {"input_size:",
       tokens ? absl::StrCat(m.input_size(), " (the embedding's width)")
              : absl::StrCat(m.input_size())},
      {"hidden_size:", absl::StrCat(m.hidden_size())},
      {"num_layers:", absl::StrCat(m.num_layers())},
      {"bidirectional:", m.bidirectional() ? "true" : "false"},
      {"readout:", ReadoutSummary(m)},
      {"head:", HeadSummary(m)},
      {"output_size:", absl::StrCat(m.output_size())},
      {"output_activation:", ActivationSummary(m)},
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
  return rows;
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
