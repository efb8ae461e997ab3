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
  kHeadWeight,  // out.weight
  kHeadBias,    // out.bias
};

struct TensorSpec {
  TensorKind kind = TensorKind::kWeightIh;
  int layer = 0;      // Recurrent tensors only.
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
// bias), then out.weight and out.bias. `config` must pass ValidateConfig.
std::vector<TensorSpec> ExpectedTensors(const ModelConfig& config);

// The number of floats of all the tensors above, computed without overflow
// for any config whose sizes are within ValidateConfig's per-field limits.
int64_t NumParameters(const ModelConfig& config);

// Where `spec`'s values live in `model`, whose `layers` must hold
// num_layers * num_directions entries.
const std::vector<float>& TensorValues(const Model& model,
                                       const TensorSpec& spec);
std::vector<float>& MutableTensorValues(Model& model, const TensorSpec& spec);

}  // namespace rnnserve::model

#endif  // RNNSERVE_SERVER_MODEL_TENSORS_H_
