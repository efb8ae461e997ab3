// The sequences `rnnctl classify` sends, read from Fashion-MNIST idx files or
// from a CSV file and checked against the model's description.
#ifndef RNNSERVE_CLIENT_CLASSIFY_INPUTS_H_
#define RNNSERVE_CLIENT_CLASSIFY_INPUTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rnnserve/v1/inference.pb.h"

namespace rnnserve::client {

struct ClassifyInputs {
  std::vector<v1::Sequence> sequences;
  // The true class of each sequence, or empty when the labels are unknown.
  std::vector<int> true_classes;
  // Index in the source (image number or CSV line) of each sequence.
  std::vector<int64_t> source_index;
  // What source_index counts: "image" or "line".
  std::string source_name;
  // For one sequence given as text: the text and its token ids, printed
  // above the predictions. Empty otherwise.
  std::string description;
};

// Images [offset, offset + count) of an idx images file, each scaled to
// pixel / 255 and sent row by row (rows steps of cols features; the model's
// input_size must equal cols). With a non-empty `labels_path`, the matching
// labels, which must be class indices of the model.
absl::StatusOr<ClassifyInputs> LoadIdxInputs(const std::string& images_path,
                                             const std::string& labels_path,
                                             int64_t offset, int64_t count,
                                             const v1::ModelInfo& model);

// Every sequence of a CSV file (see csv_reader.h); each must have a multiple
// of the model's input_size values. With `label_column`, the first column is
// the true class: its index, or one of the model's labels.
absl::StatusOr<ClassifyInputs> LoadCsvInputs(const std::string& path,
                                             bool label_column,
                                             const v1::ModelInfo& model);

// One sequence of token ids for a model that reads them (ModelInfo
// input_kind INPUT_KIND_TOKEN_IDS), from "1,2,3": one id per step, each in
// [0, vocabulary_size). The message names the position of a bad id.
absl::StatusOr<ClassifyInputs> LoadTokenInputs(const std::string& tokens,
                                               const v1::ModelInfo& model);

// One sequence from text, for a model with a tokenizer (ModelInfo
// tokenizer; see text_tokens.h): one step per character.
absl::StatusOr<ClassifyInputs> LoadTextInputs(const std::string& text,
                                              const v1::ModelInfo& model);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_CLASSIFY_INPUTS_H_
