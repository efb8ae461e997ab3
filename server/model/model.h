// A recurrent model as PyTorch defines it: the validated configuration and the
// host weights, in PyTorch's own layouts. Plain data, no inference library.
//
// A model is the PyTorch module
//
//   rnn = nn.LSTM | nn.GRU | nn.RNN(input_size, hidden_size, num_layers,
//                                   bias, batch_first=True, bidirectional)
//   out = nn.Linear(num_directions * hidden_size, output_size)
//         or an nn.Sequential of Linear, activation and Dropout layers
//
// with the head applied to a readout of the recurrent output (the last
// step's by default; classification) or at every step (regression).
#ifndef RNNSERVE_SERVER_MODEL_MODEL_H_
#define RNNSERVE_SERVER_MODEL_MODEL_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace rnnserve::model {

enum class Cell { kLstm, kGru, kRnnTanh, kRnnRelu };
enum class Task { kClassification, kRegression };

// What a classification head reads (docs/model-format.md, "readout"):
// r_out[:, -1], the last layer's final state h_n (forward beside backward
// when bidirectional), or the mean or elementwise max of r_out over the
// sequence's own steps.
enum class Readout { kLastOutput, kFinalState, kMean, kMax };

// One module of an nn.Sequential head, in order; its index in the list is
// its index in the Sequential, which names its tensors ("out.3.weight").
enum class HeadLayerKind { kLinear, kRelu, kTanh, kSigmoid, kGelu, kDropout };

// What a stream (regression) model applies to the head's outputs at every
// step (docs/model-format.md, "output_activation"): nothing, an elementwise
// sigmoid, or a softmax over the step's outputs.
enum class OutputActivation { kNone, kSigmoid, kSoftmax };
struct HeadLayer {
  HeadLayerKind kind = HeadLayerKind::kLinear;
  int width = 0;  // kLinear only: out_features.

  bool operator==(const HeadLayer&) const = default;
};

// "lstm", "gru", "rnn_tanh", "rnn_relu".
std::string_view CellName(Cell cell);
// "classification", "regression".
std::string_view TaskName(Task task);
// "last_output", "final_state", "mean", "max".
std::string_view ReadoutName(Readout readout);
// "linear", "relu", "tanh", "sigmoid", "gelu", "dropout".
std::string_view HeadLayerName(HeadLayerKind kind);
// "none", "sigmoid", "softmax".
std::string_view OutputActivationName(OutputActivation activation);

// Gate blocks stacked in PyTorch's weight_ih / weight_hh rows: LSTM 4 (i, f,
// g, o), GRU 3 (r, z, n), vanilla RNN 1.
int NumGates(Cell cell);

// An nn.Embedding before the recurrent layers (config "embedding"): the
// model reads token ids, one per step, and step t's input is row id of
// embedding.weight, (num_embeddings, embedding_dim).
struct EmbeddingConfig {
  int num_embeddings = 0;  // V; 0 when the model has no embedding.
  int embedding_dim = 0;   // E; equals input_size.
  int padding_idx = -1;    // In [0, V), or -1; documentation only.

  bool operator==(const EmbeddingConfig&) const = default;
};

// How text becomes token ids for a model with an embedding (config
// "tokenizer"). The server itself reads token ids only; clients that take
// text (rnnctl classify --text) tokenize with this, which ModelInfo carries.
// Each token is one Unicode character, except the one at unknown_id.
struct TokenizerConfig {
  std::vector<std::string> tokens;  // Id i's character; empty: no tokenizer.
  int unknown_id = -1;     // The id of a character not in tokens, or -1.
  bool lowercase = false;  // Whether text is lower-cased before lookup.

  bool operator==(const TokenizerConfig&) const = default;
};

struct ModelConfig {
  std::string name;     // The model's folder name; how clients address it.
  std::string version;  // Free-form, reported with every answer.
  Cell cell = Cell::kLstm;
  int input_size = 0;
  int hidden_size = 0;
  int num_layers = 1;
  bool bidirectional = false;  // Classification only.
  bool bias = true;            // Whether the recurrent layers have biases.
  int output_size = 0;         // The head's output width.
  Task task = Task::kClassification;
  Readout readout = Readout::kLastOutput;  // Classification only.
  // Empty: the single nn.Linear `out` (out.weight, out.bias). Otherwise the
  // modules of the nn.Sequential `out`; its last linear is output_size wide.
  std::vector<HeadLayer> head = {};
  // Regression only: applied to the head's outputs at every step.
  OutputActivation output_activation = OutputActivation::kNone;
  // Empty, or one per output (classification, or regression with an
  // output activation).
  std::vector<std::string> labels;
  std::string weights_file = "model.safetensors";
  std::string description;         // Free text for people; may be empty.
  EmbeddingConfig embedding = {};  // num_embeddings 0: float inputs.
  TokenizerConfig tokenizer = {};  // Only with an embedding; may be empty.

  // Whether requests give token ids (one per step) instead of floats.
  bool has_embedding() const { return embedding.num_embeddings > 0; }

  int num_directions() const { return bidirectional ? 2 : 1; }
  // Floats of recurrent state carried between chunks: h of every layer and
  // direction, then c of every layer and direction for LSTM.
  int state_size() const;
  // Floats a classified sequence carries between parts (engine.h,
  // ClassifyItem): state_size(), then for a "mean" readout the sum of the
  // outputs so far and their step count, for "max" their running maximum.
  int classify_state_size() const;
  // Width of the readout the head reads: num_directions * hidden_size.
  int readout_size() const { return num_directions() * hidden_size; }
};

// One layer in one direction, in PyTorch's layouts.
struct LayerWeights {
  std::vector<float> weight_ih;  // (gates * hidden, layer input width)
  std::vector<float> weight_hh;  // (gates * hidden, hidden)
  std::vector<float> bias_ih;    // (gates * hidden), empty without bias
  std::vector<float> bias_hh;    // (gates * hidden), empty without bias
};

// One nn.Linear of a Sequential head, in PyTorch's layout.
struct LinearWeights {
  std::vector<float> weight;  // (out_features, in_features)
  std::vector<float> bias;    // (out_features)
};

struct Model {
  ModelConfig config;
  // embedding.weight, (num_embeddings, input_size); empty without one.
  std::vector<float> embedding_weight;
  // Indexed by layer * num_directions + direction (0 forward, 1 reverse).
  std::vector<LayerWeights> layers;
  // The single-Linear head (config.head empty):
  std::vector<float> head_weight;  // (output_size, num_directions * hidden)
  std::vector<float> head_bias;    // (output_size)
  // A Sequential head: one entry per module of config.head, weights only
  // for its linear layers ((width, input width) and (width)), else empty.
  std::vector<LinearWeights> head_layers;
};

// Width of layer `layer`'s input: input_size for layer 0, else
// num_directions * hidden_size.
int LayerInputSize(const ModelConfig& config, int layer);

// Upper limits that ValidateConfig enforces, so that no configuration can
// make the server allocate without bound.
inline constexpr int kMaxModelSize = 65536;  // input, hidden, output sizes
inline constexpr int kMaxModelLayers = 64;
inline constexpr int kMaxHeadLayers = 64;       // Modules of a Sequential head.
inline constexpr int kMaxVocabulary = 1 << 26;  // "num_embeddings".
// All tensors together, in floats: 1 GiB.
inline constexpr int64_t kMaxModelParameters = int64_t{1} << 28;

// Checks the configuration on its own: positive sizes within limits, labels
// count, a bidirectional model only for classification. The message names
// the field.
absl::Status ValidateConfig(const ModelConfig& config);

// Checks the configuration, then every weight's element count against it and
// that every weight is finite. The message names the tensor as PyTorch's
// state_dict() does (e.g. "rnn.weight_hh_l1_reverse").
absl::Status ValidateModel(const Model& model);

// PyTorch's state_dict() name of a recurrent tensor: kind is "weight_ih",
// "weight_hh", "bias_ih" or "bias_hh".
std::string RecurrentTensorName(std::string_view kind, int layer,
                                int direction);

}  // namespace rnnserve::model

#endif  // RNNSERVE_SERVER_MODEL_MODEL_H_
