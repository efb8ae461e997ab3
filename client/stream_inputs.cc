#include "client/stream_inputs.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/csv_reader.h"
#include "server/common/status_macros.h"

namespace rnnserve::client {

void StreamInputs::AddTo(int64_t from, int64_t n,
                         v1::RegressRequest* request) const {
  request->set_steps(static_cast<uint32_t>(n));
  if (width == 0) {
    request->mutable_token_ids()->Add(token_ids.begin() + from,
                                      token_ids.begin() + from + n);
  } else {
    request->mutable_values()->Add(values.begin() + from * width,
                                   values.begin() + (from + n) * width);
  }
}

std::string StreamInputs::Describe(int64_t i) const {
  if (width == 0) return absl::StrCat(token_ids[i]);
  // Enough to recognise the step without flooding a row.
  constexpr int64_t kShown = 3;
  std::string out;
  for (int64_t j = 0; j < std::min(width, kShown); ++j) {
    absl::StrAppend(&out, j > 0 ? "," : "",
                    absl::StrFormat("%.4g", values[i * width + j]));
  }
  if (width > kShown) absl::StrAppend(&out, ",...");
  return out;
}

absl::StatusOr<StreamInputs> ParseStreamTokens(const std::string& tokens,
                                               const v1::ModelInfo& model) {
  if (model.input_kind() != v1::INPUT_KIND_TOKEN_IDS) {
    return absl::FailedPreconditionError(
        absl::StrCat("--tokens: model \"", model.name(),
                     "\" reads values, not token ids; use --csv"));
  }
  StreamInputs inputs;
  int64_t position = 0;
  for (absl::string_view part : absl::StrSplit(tokens, ',')) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &id) || id < 0 ||
        id >= model.vocabulary_size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tokens[", position, "]: \"", part, "\" is not a token id in [0, ",
          model.vocabulary_size(), ") (model \"", model.name(), "\")"));
    }
    inputs.token_ids.push_back(id);
    ++position;
  }
  inputs.steps = position;
  return inputs;
}

absl::StatusOr<StreamInputs> LoadStreamCsv(const std::string& path,
                                           const v1::ModelInfo& model) {
  if (model.input_kind() == v1::INPUT_KIND_TOKEN_IDS) {
    return absl::FailedPreconditionError(
        absl::StrCat("--csv: model \"", model.name(),
                     "\" reads token ids, not values; use --tokens"));
  }
  const int64_t width = model.input_size();
  if (width == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("model \"", model.name(), "\" reports input_size 0"));
  }
  ASSIGN_OR_RETURN(std::vector<CsvSequence> rows,
                   ReadCsvSequences(path, /*label_column=*/false));
  StreamInputs inputs;
  inputs.width = width;
  for (const CsvSequence& row : rows) {
    if (static_cast<int64_t>(row.values.size()) % width != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--csv: \"", path, "\" line ", row.line, ": ", row.values.size(),
          " values are not a whole number of steps of input_size ", width,
          " (model \"", model.name(), "\")"));
    }
    inputs.values.insert(inputs.values.end(), row.values.begin(),
                         row.values.end());
  }
  if (inputs.values.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--csv: \"", path, "\" holds no values"));
  }
  inputs.steps = static_cast<int64_t>(inputs.values.size()) / width;
  return inputs;
}

absl::Status CheckTopK(int64_t top_k, const v1::ModelInfo& model) {
  if (top_k == 0) return absl::OkStatus();
  const std::string& activation = model.output_activation();
  if (activation == "softmax" || activation == "sigmoid") {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--top-k: model \"", model.name(),
      "\" has no output activation (sigmoid or softmax), so its steps have no "
      "classes to rank; leave --top-k at 0"));
}

std::string FormatStepTop(const v1::StepTop& top) {
  std::string out;
  for (const v1::ClassScore& c : top.top()) {
    absl::StrAppend(&out, out.empty() ? "" : "  ",
                    c.label().empty() ? absl::StrCat(c.index()) : c.label(),
                    absl::StrFormat(" %.6f", c.probability()));
  }
  return out;
}

namespace {

// Checks one answer's shape and appends its steps to `run`.
absl::Status Record(const v1::RegressResponse& response, int64_t first_input,
                    int64_t n, const v1::ModelInfo& model, uint32_t top_k,
                    SequenceRun* run) {
  const int64_t width = model.output_size();
  if (response.outputs_size() != n * width) {
    return absl::InternalError(
        absl::StrCat("the server answered ", response.outputs_size(),
                     " outputs for ", n, " steps of output_size ", width));
  }
  if (top_k > 0 && response.step_top_size() != n) {
    return absl::InternalError(
        absl::StrCat("the server answered ", response.step_top_size(),
                     " step tops for ", n, " steps asked with top_k ", top_k));
  }
  for (int64_t j = 0; j < n; ++j) {
    SequenceStep step;
    step.step = response.first_step() + j;
    step.input = first_input + j;
    step.outputs.assign(response.outputs().begin() + j * width,
                        response.outputs().begin() + (j + 1) * width);
    if (top_k > 0) step.top = response.step_top(static_cast<int>(j));
    run->steps.push_back(std::move(step));
  }
  run->version = response.model_version();
  run->ended = response.session_ended();
  run->next_step = response.first_step() + n;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SequenceRun> StreamSequence(const Connection& connection,
                                           const SequenceOptions& o,
                                           const v1::ModelInfo& model,
                                           const StreamInputs& inputs) {
  RegressSession::Options options;
  options.transport = o.transport;
  options.retry.max_retries = o.retries;
  options.model_version = o.model_version;
  RegressSession session(connection, o.model, o.resume, std::move(options));
  SequenceRun run;
  const int64_t chunk = std::max<int64_t>(o.chunk, 1);
  for (int64_t sent = 0; sent < inputs.steps;) {
    const int64_t n = std::min(chunk, inputs.steps - sent);
    v1::RegressRequest request;
    inputs.AddTo(sent, n, &request);
    request.set_top_k(o.top_k);
    request.set_end_session(o.end_session && sent + n == inputs.steps);
    ASSIGN_OR_RETURN(v1::RegressResponse response,
                     session.Send(std::move(request)));
    RETURN_IF_ERROR(Record(response, sent, n, model, o.top_k, &run));
    ++run.chunks;
    sent += n;
  }
  RETURN_IF_ERROR(session.CloseStream());
  run.calls = session.calls();
  run.retries = session.retries();
  run.replays = session.replays();
  run.restarts = session.restarts();
  run.token = session.token();
  return run;
}

}  // namespace rnnserve::client
