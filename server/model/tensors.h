// The tensors a model's weights file holds, derived from its configuration:
// names as PyTorch's state_dict() spells them, shapes, and where each one's
// values live in a Model.
#ifndef RNNSERVE_SERVER_MODEL_TENSORS_H_
#define RNNSERVE_SERVER_MODEL_TENSORS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "server/model/model.h"

namespace rnnserve::model {

enum class TensorKind {
  kWeightIh,
  kWeightHh,
  kBiasIh,
  kBiasHh,
  kHeadWeight,  // out.weight, or out.{index}.weight of a Sequential head
  kHeadBias,    // out.bias, or out.{index}.bias
  kEmbedding,   // embedding.weight
};

struct TensorSpec {
  TensorKind kind = TensorKind::kWeightIh;
  // Recurrent tensors: the layer. Head tensors of a Sequential head: the
  // module's index in it; -1 for the single Linear head.
  int layer = 0;
  int direction = 0;  // Recurrent tensors only: 0 forward, 1 reverse.
  std::string name;   // "rnn.weight_ih_l0", "out.bias", ...
  std::vector<int64_t> shape;
  // How the shape follows from the config, for messages:
  // "4 gates x hidden 64, input_size 28".
  std::string explanation;

  int64_t num_elements() const;
};

// Every tensor the config calls for, in PyTorch's state_dict() order: for
// each layer and direction weight_ih, weight_hh (then bias_ih, bias_hh with
// bias), then out.weight and out.bias, or for a Sequential head each linear
// layer's out.{index}.weight and out.{index}.bias. `config` must pass
// ValidateConfig.
std::vector<TensorSpec> ExpectedTensors(const ModelConfig& config);

// The number of floats of all the tensors above, computed without overflow
// for any config whose sizes are within ValidateConfig's per-field limits.
int64_t NumParameters(const ModelConfig& config);

// Where `spec`'s values live in `model`, whose `layers` must hold
// num_layers * num_directions entries, and `head_layers` one per module of
// config.head.
const std::vector<float>& TensorValues(const Model& model,
                                       const TensorSpec& spec);
std::vector<float>& MutableTensorValues(Model& model, const TensorSpec& spec);

}  // namespace rnnserve::model

#endif  // RNNSERVE_SERVER_MODEL_TENSORS_H_
