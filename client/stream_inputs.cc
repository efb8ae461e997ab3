#include "client/stream_inputs.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/csv_reader.h"
#include "client/token_flags.h"
#include "server/common/status_macros.h"
#include "server/common/utf8.h"

namespace rnnserve::client {
namespace {

// A character of --text for a report: quoted, or U+XXXX for a control
// character (which would break the row).
std::string ShowCharacter(const std::string& character) {
  const unsigned char lead = static_cast<unsigned char>(character[0]);
  if (lead < 0x20 || lead == 0x7f) return absl::StrFormat("U+%04X", lead);
  // C1 controls, U+0080..U+009F, are 0xC2 0x80..0x9F in UTF-8.
  if (lead == 0xc2 && static_cast<unsigned char>(character[1]) < 0xa0) {
    return absl::StrFormat("U+%04X", static_cast<unsigned char>(character[1]));
  }
  return absl::StrCat("\"", character, "\"");
}

}  // namespace

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
  if (width == 0 && !characters.empty()) {
    return absl::StrCat(token_ids[i], " ", ShowCharacter(characters[i]));
  }
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
  StreamInputs inputs;
  ASSIGN_OR_RETURN(inputs.token_ids, ParseTokenIds(tokens, model, "--csv"));
  inputs.steps = static_cast<int64_t>(inputs.token_ids.size());
  inputs.flag = "--tokens";
  return inputs;
}

absl::StatusOr<StreamInputs> ParseStreamText(const std::string& text,
                                             const v1::ModelInfo& model) {
  StreamInputs inputs;
  ASSIGN_OR_RETURN(inputs.token_ids, EncodeTextFlag(text, model, "--csv"));
  // EncodeText accepted the text, so it is well-formed UTF-8.
  for (size_t at = 0; at < text.size();) {
    const size_t length =
        static_cast<unsigned char>(text[at]) < 0x80
            ? 1
            : Utf8SequenceLength(std::string_view(text).substr(at));
    inputs.characters.push_back(text.substr(at, length));
    at += length;
  }
  inputs.steps = static_cast<int64_t>(inputs.token_ids.size());
  inputs.flag = "--text";
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
  inputs.flag = "--csv";
  return inputs;
}

const char* StreamInputFlags::Given() const {
  if (!tokens.empty()) return "--tokens";
  if (!text.empty()) return "--text";
  if (!csv.empty()) return "--csv";
  return nullptr;
}

absl::Status StreamInputFlags::CheckOne() const {
  const int given = static_cast<int>(!tokens.empty()) +
                    static_cast<int>(!text.empty()) +
                    static_cast<int>(!csv.empty());
  if (given > 1) {
    return absl::InvalidArgumentError(
        "--tokens, --text and --csv each give the steps to stream: pass one");
  }
  return absl::OkStatus();
}

absl::StatusOr<StreamInputs> LoadStreamInputs(const StreamInputFlags& flags,
                                              const v1::ModelInfo& model) {
  if (!flags.tokens.empty()) return ParseStreamTokens(flags.tokens, model);
  if (!flags.text.empty()) return ParseStreamText(flags.text, model);
  return LoadStreamCsv(flags.csv, model);
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
  run.tally = session.Tally();
  return run;
}

}  // namespace rnnserve::client
