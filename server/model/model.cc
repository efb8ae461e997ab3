#include "server/model/model.h"

#include <cmath>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "server/common/json.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"
#include "server/model/tensors.h"

namespace rnnserve::model {
namespace {

bool IsValidCell(Cell cell) {
  return cell == Cell::kLstm || cell == Cell::kGru || cell == Cell::kRnnTanh ||
         cell == Cell::kRnnRelu;
}

absl::Status CheckSize(std::string_view key, int64_t value, int64_t max) {
  if (value < 1 || value > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", AbslView(key), "\" must be in [1, ", max, "], got ", value));
  }
  return absl::OkStatus();
}

// A weights file name is joined to the model's folder: it must not lead
// anywhere else.
bool IsPlainFileName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(std::string_view("/\\\0", 3)) ==
             std::string_view::npos;
}

absl::Status ValidateHead(const ModelConfig& config) {
  if (config.head.empty()) return absl::OkStatus();
  if (config.head.size() > static_cast<size_t>(kMaxHeadLayers)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"head\" must have at most ", kMaxHeadLayers,
                     " layers, got ", config.head.size()));
  }
  int last_linear = -1;
  for (size_t i = 0; i < config.head.size(); ++i) {
    const HeadLayer& layer = config.head[i];
    if (layer.kind != HeadLayerKind::kLinear) continue;
    if (layer.width < 1 || layer.width > kMaxModelSize) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"head\"[", i, "] \"linear\" must be in [1, ",
                       kMaxModelSize, "], got ", layer.width));
    }
    last_linear = static_cast<int>(i);
  }
  if (last_linear < 0) {
    return absl::InvalidArgumentError(
        "\"head\" must hold at least one {\"linear\": width} layer");
  }
  for (size_t i = last_linear + 1; i < config.head.size(); ++i) {
    if (config.head[i].kind != HeadLayerKind::kDropout) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"head\"[", i, "] \"", AbslView(HeadLayerName(config.head[i].kind)),
          "\" follows the last linear layer; the head must end with its "
          "linear layer of width \"output_size\""));
    }
  }
  if (config.head[last_linear].width != config.output_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"head\"[", last_linear, "], the last linear layer, has width ",
        config.head[last_linear].width, ", expected \"output_size\" ",
        config.output_size));
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view CellName(Cell cell) {
  switch (cell) {
    case Cell::kLstm:
      return "lstm";
    case Cell::kGru:
      return "gru";
    case Cell::kRnnTanh:
      return "rnn_tanh";
    case Cell::kRnnRelu:
      return "rnn_relu";
  }
  return "unknown";
}

std::string_view TaskName(Task task) {
  switch (task) {
    case Task::kClassification:
      return "classification";
    case Task::kRegression:
      return "regression";
  }
  return "unknown";
}

std::string_view ReadoutName(Readout readout) {
  switch (readout) {
    case Readout::kLastOutput:
      return "last_output";
    case Readout::kFinalState:
      return "final_state";
    case Readout::kMean:
      return "mean";
    case Readout::kMax:
      return "max";
  }
  return "unknown";
}

std::string_view HeadLayerName(HeadLayerKind kind) {
  switch (kind) {
    case HeadLayerKind::kLinear:
      return "linear";
    case HeadLayerKind::kRelu:
      return "relu";
    case HeadLayerKind::kTanh:
      return "tanh";
    case HeadLayerKind::kSigmoid:
      return "sigmoid";
    case HeadLayerKind::kGelu:
      return "gelu";
    case HeadLayerKind::kDropout:
      return "dropout";
  }
  return "unknown";
}

std::string_view OutputActivationName(OutputActivation activation) {
  switch (activation) {
    case OutputActivation::kNone:
      return "none";
    case OutputActivation::kSigmoid:
      return "sigmoid";
    case OutputActivation::kSoftmax:
      return "softmax";
  }
  return "unknown";
}

int NumGates(Cell cell) {
  switch (cell) {
    case Cell::kLstm:
      return 4;
    case Cell::kGru:
      return 3;
    case Cell::kRnnTanh:
    case Cell::kRnnRelu:
      return 1;
  }
  return 1;
}

int ModelConfig::state_size() const {
  // In 64 bits so that even an unvalidated config cannot overflow here.
  const int64_t h = int64_t{num_layers} * num_directions() * hidden_size;
  return static_cast<int>(cell == Cell::kLstm ? 2 * h : h);
}

int ModelConfig::classify_state_size() const {
  const int64_t width = int64_t{num_directions()} * hidden_size;
  int64_t extra = 0;
  if (task == Task::kClassification && readout == Readout::kMean) {
    extra = width + 1;  // The sum, then the count.
  } else if (task == Task::kClassification && readout == Readout::kMax) {
    extra = width;
  }
  return static_cast<int>(state_size() + extra);
}

int LayerInputSize(const ModelConfig& config, int layer) {
  return layer == 0 ? config.input_size
                    : config.num_directions() * config.hidden_size;
}

std::string RecurrentTensorName(std::string_view kind, int layer,
                                int direction) {
  return absl::StrCat("rnn.", AbslView(kind), "_l", layer,
                      direction == 1 ? "_reverse" : "");
}

namespace {

// "embedding": a vocabulary within limits, a padding row inside it, and
// rows as wide as the recurrent layers' input.
absl::Status ValidateEmbedding(const ModelConfig& config) {
  const EmbeddingConfig& e = config.embedding;
  if (e.num_embeddings == 0 && e.embedding_dim == 0 && e.padding_idx == -1) {
    return absl::OkStatus();
  }
  if (e.num_embeddings < 1 || e.num_embeddings > kMaxVocabulary) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"embedding\" \"num_embeddings\" must be in [1, ",
                     kMaxVocabulary, "], got ", e.num_embeddings));
  }
  if (e.embedding_dim != config.input_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"embedding\" \"embedding_dim\" ", e.embedding_dim,
                     " must equal \"input_size\" ", config.input_size,
                     " (the recurrent layers read the embedding rows)"));
  }
  if (e.padding_idx < -1 || e.padding_idx >= e.num_embeddings) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"embedding\" \"padding_idx\" must be in [0, ",
                     e.num_embeddings, "), got ", e.padding_idx));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateConfig(const ModelConfig& config) {
  if (!IsValidCell(config.cell)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"cell\" has the invalid value ", static_cast<int>(config.cell)));
  }
  if (config.task != Task::kClassification &&
      config.task != Task::kRegression) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"task\" has the invalid value ", static_cast<int>(config.task)));
  }
  RETURN_IF_ERROR(CheckSize("input_size", config.input_size, kMaxModelSize));
  RETURN_IF_ERROR(CheckSize("hidden_size", config.hidden_size, kMaxModelSize));
  RETURN_IF_ERROR(CheckSize("num_layers", config.num_layers, kMaxModelLayers));
  RETURN_IF_ERROR(CheckSize("output_size", config.output_size, kMaxModelSize));
  if (config.bidirectional && config.task != Task::kClassification) {
    return absl::InvalidArgumentError(
        "\"bidirectional\" is only allowed with \"task\" \"classification\"");
  }
  if (config.readout != Readout::kLastOutput &&
      config.task != Task::kClassification) {
    return absl::InvalidArgumentError(
        "\"readout\" is only allowed with \"task\" \"classification\"");
  }
  RETURN_IF_ERROR(ValidateHead(config));
  if (config.output_activation != OutputActivation::kNone &&
      config.task != Task::kRegression) {
    return absl::InvalidArgumentError(
        "\"output_activation\" is only allowed with \"task\" "
        "\"regression\" (classification applies softmax itself)");
  }
  RETURN_IF_ERROR(ValidateEmbedding(config));
  if (!config.labels.empty()) {
    if (config.task != Task::kClassification &&
        config.output_activation == OutputActivation::kNone) {
      return absl::InvalidArgumentError(
          "\"labels\" is only allowed with \"task\" \"classification\" "
          "or with an \"output_activation\"");
    }
    if (config.labels.size() != static_cast<size_t>(config.output_size)) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"labels\" has ", config.labels.size(),
                       " entries, expected one per output (\"output_size\" ",
                       config.output_size, ")"));
    }
  }
  if (!IsPlainFileName(config.weights_file)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"weights\" must be a plain file name in the model's folder (not "
        "empty, '.' or '..', no '/', '\\' or NUL), got ",
        json::Quote(config.weights_file)));
  }
  const int64_t parameters = NumParameters(config);
  if (parameters > kMaxModelParameters) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the model would have ", parameters, " weights, more than the limit ",
        "of ", kMaxModelParameters, " (\"input_size\" ", config.input_size,
        ", \"hidden_size\" ", config.hidden_size, ", \"num_layers\" ",
        config.num_layers, ", \"output_size\" ", config.output_size, ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateModel(const Model& model) {
  const ModelConfig& config = model.config;
  RETURN_IF_ERROR(ValidateConfig(config));
  const size_t layers =
      static_cast<size_t>(config.num_layers) * config.num_directions();
  if (model.layers.size() != layers) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the model has weights for ", model.layers.size(),
        " layer directions, expected ", layers, " (\"num_layers\" ",
        config.num_layers, " x ", config.num_directions(), " directions)"));
  }
  if (model.head_layers.size() != config.head.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the model has weights for ", model.head_layers.size(),
        " head layers, expected ", config.head.size(), " (\"head\")"));
  }
  for (const LayerWeights& layer : model.layers) {
    if (!config.bias && (!layer.bias_ih.empty() || !layer.bias_hh.empty())) {
      return absl::InvalidArgumentError(
          "the model has recurrent biases while \"bias\" is false");
    }
  }
  for (const TensorSpec& spec : ExpectedTensors(config)) {
    const std::vector<float>& values = TensorValues(model, spec);
    if (values.size() != static_cast<size_t>(spec.num_elements())) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", spec.name, "\" has ", values.size(),
                       " values, expected ", spec.num_elements(), " (",
                       spec.explanation, ")"));
    }
    for (size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor \"", spec.name, "\" has a non-finite value (",
                         values[i], ") at index ", i));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace rnnserve::model
