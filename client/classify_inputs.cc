#include "client/classify_inputs.h"

#include <charconv>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/csv_reader.h"
#include "client/idx_reader.h"
#include "client/token_flags.h"
#include "server/common/status_macros.h"

namespace rnnserve::client {
namespace {

// The class index `text` names: a number, or one of the model's labels.
absl::StatusOr<int> ResolveClass(const std::string& text,
                                 const v1::ModelInfo& model) {
  int index = -1;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, index);
  if (text.empty() || ec != std::errc() || ptr != end) {
    index = -1;
    for (int i = 0; i < model.labels_size(); ++i) {
      if (model.labels(i) == text) index = i;
    }
  }
  if (index < 0 || index >= static_cast<int>(model.output_size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("label \"", text, "\" is neither a class index in [0, ",
                     model.output_size(), ") nor one of model \"", model.name(),
                     "\"'s labels"));
  }
  return index;
}

}  // namespace

absl::StatusOr<ClassifyInputs> LoadIdxInputs(const std::string& images_path,
                                             const std::string& labels_path,
                                             int64_t offset, int64_t count,
                                             const v1::ModelInfo& model) {
  ASSIGN_OR_RETURN(IdxArray images, ReadIdx(images_path, offset, count));
  if (images.shape.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", images_path, "\": expected images (3 dimensions), got ",
        images.shape.size() + 1, " dimensions"));
  }
  const int64_t rows = images.shape[0], cols = images.shape[1];
  if (cols != model.input_size()) {
    return absl::FailedPreconditionError(
        absl::StrCat("images of ", rows, "x", cols, " are sent as ", rows,
                     " steps of ", cols, " features, but model \"",
                     model.name(), "\" has input_size ", model.input_size()));
  }
  if (images.items < count) {
    std::fprintf(
        stderr,
        "rnnctl: \"%s\" has %lld images: classifying the %lld from "
        "%lld on\n",
        images_path.c_str(), static_cast<long long>(images.total_items),
        static_cast<long long>(images.items), static_cast<long long>(offset));
  }
  ClassifyInputs inputs;
  inputs.source_name = "image";
  inputs.sequences.resize(images.items);
  for (int64_t i = 0; i < images.items; ++i) {
    v1::Sequence& sequence = inputs.sequences[i];
    sequence.set_steps(static_cast<uint32_t>(rows));
    sequence.mutable_values()->Reserve(rows * cols);
    const uint8_t* pixels = images.item(i);
    for (int64_t p = 0; p < rows * cols; ++p) {
      sequence.add_values(pixels[p] / 255.0f);
    }
    inputs.source_index.push_back(offset + i);
  }
  if (labels_path.empty()) return inputs;

  ASSIGN_OR_RETURN(IdxArray labels, ReadIdx(labels_path, offset, count));
  if (!labels.shape.empty() || labels.total_items != images.total_items) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", labels_path, "\" is not a labels file for \"", images_path,
        "\": expected ", images.total_items, " one-byte labels"));
  }
  for (int64_t i = 0; i < labels.items; ++i) {
    const int label = labels.data[i];
    if (label >= static_cast<int>(model.output_size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", labels_path, "\" item ", offset + i, ": label ",
                       label, " is not a class of model \"", model.name(),
                       "\" (", model.output_size(), " outputs)"));
    }
    inputs.true_classes.push_back(label);
  }
  return inputs;
}

absl::StatusOr<ClassifyInputs> LoadCsvInputs(const std::string& path,
                                             bool label_column,
                                             const v1::ModelInfo& model) {
  ASSIGN_OR_RETURN(std::vector<CsvSequence> rows,
                   ReadCsvSequences(path, label_column));
  if (rows.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", path, "\" holds no sequences"));
  }
  const size_t input_size = model.input_size();
  if (input_size == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("model \"", model.name(), "\" reports input_size 0"));
  }
  ClassifyInputs inputs;
  inputs.source_name = "line";
  for (CsvSequence& row : rows) {
    if (row.values.size() % input_size != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", path, "\" line ", row.line, ": ", row.values.size(),
          " values are not a whole number of steps of input_size ", input_size,
          " (model \"", model.name(), "\")"));
    }
    v1::Sequence sequence;
    sequence.set_steps(static_cast<uint32_t>(row.values.size() / input_size));
    sequence.mutable_values()->Add(row.values.begin(), row.values.end());
    inputs.sequences.push_back(std::move(sequence));
    inputs.source_index.push_back(row.line);
    if (label_column) {
      absl::StatusOr<int> label = ResolveClass(row.label, model);
      if (!label.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "\"", path, "\" line ", row.line, ": ", label.status().message()));
      }
      inputs.true_classes.push_back(*label);
    }
  }
  return inputs;
}

namespace {

// The inputs of a single sequence given on the command line.
ClassifyInputs OneSequence(v1::Sequence sequence) {
  sequence.set_steps(static_cast<uint32_t>(sequence.token_ids_size()));
  ClassifyInputs inputs;
  inputs.source_name = "sequence";
  inputs.sequences.push_back(std::move(sequence));
  inputs.source_index.push_back(0);
  return inputs;
}

}  // namespace

absl::StatusOr<ClassifyInputs> LoadTokenInputs(const std::string& tokens,
                                               const v1::ModelInfo& model) {
  ASSIGN_OR_RETURN(std::vector<int64_t> ids,
                   ParseTokenIds(tokens, model, "--csv or --images"));
  v1::Sequence sequence;
  sequence.mutable_token_ids()->Add(ids.begin(), ids.end());
  return OneSequence(std::move(sequence));
}

absl::StatusOr<ClassifyInputs> LoadTextInputs(const std::string& text,
                                              const v1::ModelInfo& model) {
  ASSIGN_OR_RETURN(std::vector<int64_t> ids,
                   EncodeTextFlag(text, model, "--csv or --images"));
  v1::Sequence sequence;
  sequence.mutable_token_ids()->Add(ids.begin(), ids.end());
  ClassifyInputs inputs = OneSequence(std::move(sequence));
  inputs.description =
      absl::StrCat("text \"", text, "\": ", ids.size(), " steps, token ids ",
                   absl::StrJoin(ids, ","));
  return inputs;
}

}  // namespace rnnserve::client
