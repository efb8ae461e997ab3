#include "server/model/config.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <optional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/common/json.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"
#include "server/common/utf8.h"

namespace rnnserve::model {
namespace {

using json::Describe;
using json::Value;

constexpr std::string_view kKnownKeys[] = {"format_version",
                                           "version",
                                           "cell",
                                           "input_size",
                                           "hidden_size",
                                           "num_layers",
                                           "bidirectional",
                                           "bias",
                                           "output_size",
                                           "task",
                                           "readout",
                                           "head",
                                           "labels",
                                           "weights",
                                           "description",
                                           "training",
                                           "embedding",
                                           "tokenizer",
                                           "output_activation"};

constexpr std::array<std::pair<std::string_view, Cell>, 4> kCells = {{
    {"lstm", Cell::kLstm},
    {"gru", Cell::kGru},
    {"rnn_tanh", Cell::kRnnTanh},
    {"rnn_relu", Cell::kRnnRelu},
}};

constexpr std::array<std::pair<std::string_view, Task>, 2> kTasks = {{
    {"classification", Task::kClassification},
    {"regression", Task::kRegression},
}};

constexpr std::array<std::pair<std::string_view, Readout>, 4> kReadouts = {{
    {"last_output", Readout::kLastOutput},
    {"final_state", Readout::kFinalState},
    {"mean", Readout::kMean},
    {"max", Readout::kMax},
}};

constexpr std::array<std::pair<std::string_view, HeadLayerKind>, 4>
    kActivations = {{
        {"relu", HeadLayerKind::kRelu},
        {"tanh", HeadLayerKind::kTanh},
        {"sigmoid", HeadLayerKind::kSigmoid},
        {"gelu", HeadLayerKind::kGelu},
    }};

constexpr std::array<std::pair<std::string_view, OutputActivation>, 3>
    kOutputActivations = {{
        {"none", OutputActivation::kNone},
        {"sigmoid", OutputActivation::kSigmoid},
        {"softmax", OutputActivation::kSoftmax},
    }};

// Reads the keys of one config object; every message starts with the
// source and names the key.
class ConfigReader {
 public:
  ConfigReader(const Value& root, std::string_view source)
      : root_(root), source_(source) {}

  template <typename... Parts>
  absl::Status Error(std::string_view key, const Parts&... parts) const {
    return absl::InvalidArgumentError(absl::StrCat(
        AbslView(source_), ": \"", AbslView(key), "\" ", parts...));
  }

  // The value of `key`, or nullptr when absent.
  const Value* Optional(std::string_view key) const { return root_.Find(key); }

  std::string_view source() const { return source_; }

  absl::StatusOr<const Value*> Required(std::string_view key) const {
    const Value* value = root_.Find(key);
    if (value == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          AbslView(source_), ": missing required key \"", AbslView(key), "\""));
    }
    return value;
  }

  // An integer in [1, max]; `fallback` when absent, if there is one.
  absl::StatusOr<int> Size(std::string_view key, int max,
                           std::optional<int> fallback = std::nullopt) const {
    const Value* value = Optional(key);
    if (value == nullptr) {
      if (fallback) return *fallback;
      ASSIGN_OR_RETURN(value, Required(key));
    }
    std::optional<int64_t> i = value->integer();
    if (!i || *i < 1) {
      return Error(key, "must be an integer >= 1, got ", Describe(*value));
    }
    if (*i > max) return Error(key, "must be at most ", max, ", got ", *i);
    return static_cast<int>(*i);
  }

  absl::StatusOr<bool> Bool(std::string_view key, bool fallback) const {
    const Value* value = Optional(key);
    if (value == nullptr) return fallback;
    if (!value->is_bool()) {
      return Error(key, "must be true or false, got ", Describe(*value));
    }
    return value->bool_value();
  }

  absl::StatusOr<std::string> String(const Value& value,
                                     std::string_view key) const {
    if (!value.is_string()) {
      return Error(key, "must be a string, got ", Describe(value));
    }
    return value.string();
  }

  // One of `choices`' names.
  template <typename T, size_t N>
  absl::StatusOr<T> Choice(
      std::string_view key,
      const std::array<std::pair<std::string_view, T>, N>& choices) const {
    ASSIGN_OR_RETURN(const Value* value, Required(key));
    std::string names;
    for (const auto& [name, choice] : choices) {
      if (value->is_string() && value->string() == name) return choice;
      absl::StrAppend(&names, names.empty() ? "" : ", ", "\"", AbslView(name),
                      "\"");
    }
    return Error(key, "must be one of ", names, ", got ", Describe(*value));
  }

 private:
  const Value& root_;
  const std::string_view source_;
};

constexpr std::string_view kHeadLayerForms =
    "an object with one key: \"linear\" (an integer >= 1, its output "
    "width), \"activation\" (\"relu\", \"tanh\", \"sigmoid\" or \"gelu\") or "
    "\"dropout\" (a number in [0, 1), ignored)";

// One module of "head": {"linear": 64}, {"activation": "relu"} or
// {"dropout": 0.1}.
absl::StatusOr<HeadLayer> ReadHeadLayer(const ConfigReader& reader,
                                        const Value& entry, size_t i) {
  const auto error = [&](const auto&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(
        AbslView(reader.source()), ": \"head\"[", i, "] ", parts...));
  };
  if (!entry.is_object() || entry.object().size() != 1) {
    return error("must be ", AbslView(kHeadLayerForms), ", got ",
                 Describe(entry));
  }
  const auto& [key, value] = entry.object().front();
  HeadLayer layer;
  if (key == "linear") {
    const std::optional<int64_t> width = value.integer();
    if (!width || *width < 1 || *width > kMaxModelSize) {
      return error("\"linear\" must be an integer in [1, ", kMaxModelSize,
                   "], got ", Describe(value));
    }
    layer.width = static_cast<int>(*width);
    return layer;
  }
  if (key == "activation") {
    std::string names;
    for (const auto& [name, kind] : kActivations) {
      if (value.is_string() && value.string() == name) {
        layer.kind = kind;
        return layer;
      }
      absl::StrAppend(&names, names.empty() ? "" : ", ", "\"", AbslView(name),
                      "\"");
    }
    return error("\"activation\" must be one of ", names, ", got ",
                 Describe(value));
  }
  if (key == "dropout") {
    if (!value.is_number() || !(value.number() >= 0 && value.number() < 1)) {
      return error("\"dropout\" must be a number in [0, 1), got ",
                   Describe(value));
    }
    layer.kind = HeadLayerKind::kDropout;
    return layer;
  }
  return error("must be ", AbslView(kHeadLayerForms), ", got the key ",
               json::Quote(key));
}

absl::Status ReadHead(const ConfigReader& reader, const Value& head,
                      ModelConfig* config) {
  if (!head.is_array() || head.array().empty()) {
    return reader.Error("head",
                        "must be a non-empty array of the modules of an "
                        "nn.Sequential, each ",
                        AbslView(kHeadLayerForms), ", got ", Describe(head));
  }
  if (head.array().size() > static_cast<size_t>(kMaxHeadLayers)) {
    return reader.Error("head", "must have at most ", kMaxHeadLayers,
                        " entries, got ", head.array().size());
  }
  for (size_t i = 0; i < head.array().size(); ++i) {
    ASSIGN_OR_RETURN(HeadLayer layer,
                     ReadHeadLayer(reader, head.array()[i], i));
    config->head.push_back(layer);
  }
  return absl::OkStatus();
}

absl::Status ReadLabels(const ConfigReader& reader, const Value& labels,
                        ModelConfig* config) {
  if (config->task != Task::kClassification &&
      config->output_activation == OutputActivation::kNone) {
    return reader.Error("labels",
                        "is only allowed with \"task\" \"classification\" "
                        "or with an \"output_activation\"");
  }
  if (!labels.is_array()) {
    return reader.Error("labels", "must be an array of strings, got ",
                        Describe(labels));
  }
  for (size_t i = 0; i < labels.array().size(); ++i) {
    const Value& label = labels.array()[i];
    if (!label.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(AbslView(reader.source()), ": \"labels\"[", i,
                       "] must be a string, got ", Describe(label)));
    }
    config->labels.push_back(label.string());
  }
  // Checked here too, because an empty array would pass ValidateConfig.
  if (config->labels.size() != static_cast<size_t>(config->output_size)) {
    return reader.Error("labels", "has ", config->labels.size(),
                        " entries, expected one per output (\"output_size\" ",
                        config->output_size, ")");
  }
  return absl::OkStatus();
}

// "embedding": {"num_embeddings": V, "embedding_dim": E, "padding_idx": P}
// with P optional; ValidateConfig checks the values against each other.
absl::Status ReadEmbedding(const ConfigReader& reader, const Value& embedding,
                           ModelConfig* config) {
  const auto error = [&](const auto&... parts) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(reader.source()), ": \"embedding\" ", parts...));
  };
  if (!embedding.is_object()) {
    return error("must be an object {\"num_embeddings\": V, ",
                 "\"embedding_dim\": E, \"padding_idx\": P (optional)}, got ",
                 Describe(embedding));
  }
  for (const Value::Member& member : embedding.object()) {
    if (member.first != "num_embeddings" && member.first != "embedding_dim" &&
        member.first != "padding_idx") {
      return error("has the unknown key ", json::Quote(member.first));
    }
  }
  const auto field = [&](std::string_view key, int min, int max,
                         bool required) -> absl::StatusOr<int> {
    const Value* value = embedding.Find(key);
    if (value == nullptr) {
      if (!required) return -1;
      return error("is missing the key \"", AbslView(key), "\"");
    }
    const std::optional<int64_t> i = value->integer();
    if (!i || *i < min || *i > max) {
      return error("\"", AbslView(key), "\" must be an integer in [", min, ", ",
                   max, "], got ", Describe(*value));
    }
    return static_cast<int>(*i);
  };
  ASSIGN_OR_RETURN(config->embedding.num_embeddings,
                   field("num_embeddings", 1, kMaxVocabulary, true));
  ASSIGN_OR_RETURN(config->embedding.embedding_dim,
                   field("embedding_dim", 1, kMaxModelSize, true));
  ASSIGN_OR_RETURN(
      config->embedding.padding_idx,
      field("padding_idx", 0, config->embedding.num_embeddings - 1, false));
  return absl::OkStatus();
}

// Whether `s` is exactly one Unicode character in UTF-8.
bool IsOneCharacter(std::string_view s) {
  if (s.size() == 1) return static_cast<unsigned char>(s[0]) < 0x80;
  return !s.empty() && Utf8SequenceLength(s) == s.size();
}

// "tokenizer": {"type": "characters", "tokens": [...], "unknown_id": U,
// "lowercase": B}, U and B optional; one token per embedding row.
absl::Status ReadTokenizer(const ConfigReader& reader, const Value& tokenizer,
                           ModelConfig* config) {
  const auto error = [&](const auto&... parts) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(reader.source()), ": \"tokenizer\" ", parts...));
  };
  if (!tokenizer.is_object()) {
    return error("must be an object {\"type\": \"characters\", \"tokens\": ",
                 "[...], \"unknown_id\": U, \"lowercase\": B}, got ",
                 Describe(tokenizer));
  }
  for (const Value::Member& member : tokenizer.object()) {
    if (member.first != "type" && member.first != "tokens" &&
        member.first != "unknown_id" && member.first != "lowercase") {
      return error("has the unknown key ", json::Quote(member.first));
    }
  }
  const Value* type = tokenizer.Find("type");
  if (type == nullptr || !type->is_string() || type->string() != "characters") {
    return error("\"type\" must be \"characters\", got ",
                 type == nullptr ? "nothing" : Describe(*type));
  }
  const int vocabulary = config->embedding.num_embeddings;
  TokenizerConfig& out = config->tokenizer;
  if (const Value* unknown = tokenizer.Find("unknown_id")) {
    const std::optional<int64_t> id = unknown->integer();
    if (!id || *id < 0 || *id >= vocabulary) {
      return error("\"unknown_id\" must be an integer in [0, ", vocabulary,
                   "), got ", Describe(*unknown));
    }
    out.unknown_id = static_cast<int>(*id);
  }
  if (const Value* lowercase = tokenizer.Find("lowercase")) {
    if (!lowercase->is_bool()) {
      return error("\"lowercase\" must be true or false, got ",
                   Describe(*lowercase));
    }
    out.lowercase = lowercase->bool_value();
  }
  const Value* tokens = tokenizer.Find("tokens");
  if (tokens == nullptr || !tokens->is_array() ||
      tokens->array().size() != static_cast<size_t>(vocabulary)) {
    return error("\"tokens\" must be an array of \"num_embeddings\" (",
                 vocabulary, ") strings");
  }
  absl::flat_hash_set<std::string> seen;
  for (size_t i = 0; i < tokens->array().size(); ++i) {
    const Value& token = tokens->array()[i];
    const bool unknown = static_cast<int>(i) == out.unknown_id;
    if (!token.is_string() || (!unknown && !IsOneCharacter(token.string()))) {
      return error("\"tokens\"[", i, "] must be one character (any string at ",
                   "\"unknown_id\"), got ", Describe(token));
    }
    if (!unknown && !seen.insert(token.string()).second) {
      return error("\"tokens\"[", i, "] ", json::Quote(token.string()),
                   " appears twice");
    }
    out.tokens.push_back(token.string());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json,
                                             std::string_view source) {
  ASSIGN_OR_RETURN(const Value root, json::ParseObject(json, source));
  for (const Value::Member& member : root.object()) {
    if (std::find(std::begin(kKnownKeys), std::end(kKnownKeys), member.first) ==
        std::end(kKnownKeys)) {
      return absl::InvalidArgumentError(absl::StrCat(
          AbslView(source), ": unknown key ", json::Quote(member.first)));
    }
  }
  const ConfigReader reader(root, source);
  ModelConfig config;

  ASSIGN_OR_RETURN(const Value* format_version,
                   reader.Required("format_version"));
  if (format_version->integer() != 1) {
    return reader.Error("format_version", "must be 1, got ",
                        Describe(*format_version));
  }
  ASSIGN_OR_RETURN(const Value* version, reader.Required("version"));
  ASSIGN_OR_RETURN(config.version, reader.String(*version, "version"));
  if (config.version.empty()) {
    return reader.Error("version", "must not be empty");
  }
  ASSIGN_OR_RETURN(config.cell, reader.Choice("cell", kCells));
  ASSIGN_OR_RETURN(config.input_size, reader.Size("input_size", kMaxModelSize));
  ASSIGN_OR_RETURN(config.hidden_size,
                   reader.Size("hidden_size", kMaxModelSize));
  ASSIGN_OR_RETURN(config.num_layers,
                   reader.Size("num_layers", kMaxModelLayers, 1));
  ASSIGN_OR_RETURN(config.bidirectional, reader.Bool("bidirectional", false));
  ASSIGN_OR_RETURN(config.bias, reader.Bool("bias", true));
  ASSIGN_OR_RETURN(config.output_size,
                   reader.Size("output_size", kMaxModelSize));
  ASSIGN_OR_RETURN(config.task, reader.Choice("task", kTasks));
  if (reader.Optional("readout") != nullptr) {
    if (config.task != Task::kClassification) {
      return reader.Error("readout",
                          "is only allowed with \"task\" \"classification\" "
                          "(regression applies the head at every step)");
    }
    ASSIGN_OR_RETURN(config.readout, reader.Choice("readout", kReadouts));
  }
  if (reader.Optional("output_activation") != nullptr) {
    if (config.task != Task::kRegression) {
      return reader.Error("output_activation",
                          "is only allowed with \"task\" \"regression\" "
                          "(classification applies softmax itself)");
    }
    ASSIGN_OR_RETURN(config.output_activation,
                     reader.Choice("output_activation", kOutputActivations));
  }
  if (const Value* head = reader.Optional("head")) {
    RETURN_IF_ERROR(ReadHead(reader, *head, &config));
  }
  if (const Value* embedding = reader.Optional("embedding")) {
    RETURN_IF_ERROR(ReadEmbedding(reader, *embedding, &config));
  }
  if (const Value* tokenizer = reader.Optional("tokenizer")) {
    if (!config.has_embedding()) {
      return reader.Error("tokenizer",
                          "is only allowed with an \"embedding\" (it turns "
                          "text into the embedding's token ids)");
    }
    RETURN_IF_ERROR(ReadTokenizer(reader, *tokenizer, &config));
  }
  if (const Value* labels = reader.Optional("labels")) {
    RETURN_IF_ERROR(ReadLabels(reader, *labels, &config));
  }
  if (const Value* weights = reader.Optional("weights")) {
    ASSIGN_OR_RETURN(config.weights_file, reader.String(*weights, "weights"));
  }
  if (const Value* description = reader.Optional("description")) {
    ASSIGN_OR_RETURN(config.description,
                     reader.String(*description, "description"));
  }
  if (const Value* training = reader.Optional("training");
      training != nullptr && !training->is_object()) {
    return reader.Error("training", "must be an object, got ",
                        Describe(*training));
  }

  if (absl::Status valid = ValidateConfig(config); !valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(source), ": ", valid.message()));
  }
  return config;
}

}  // namespace rnnserve::model
