#include "server/model/tensors.h"

#include "absl/strings/str_cat.h"

namespace rnnserve::model {
namespace {

std::string GateRows(const ModelConfig& config) {
  const int gates = NumGates(config.cell);
  return absl::StrCat(gates, gates == 1 ? " gate" : " gates", " x hidden ",
                      config.hidden_size);
}

// The width of what layer 1.., or the head, reads: every direction's h.
std::string DirectionsWidth(const ModelConfig& config) {
  if (config.num_directions() == 1) {
    return absl::StrCat("hidden ", config.hidden_size);
  }
  return absl::StrCat(config.num_directions(), " directions x hidden ",
                      config.hidden_size);
}

// out.{i}.weight and out.{i}.bias of each linear module i of the head.
void AddSequentialHead(const ModelConfig& config,
                       std::vector<TensorSpec>& specs) {
  int64_t inputs = config.readout_size();
  std::string from = DirectionsWidth(config);
  for (size_t i = 0; i < config.head.size(); ++i) {
    const HeadLayer& layer = config.head[i];
    if (layer.kind != HeadLayerKind::kLinear) continue;
    const int index = static_cast<int>(i);
    const std::string width =
        absl::StrCat("\"head\"[", i, "] linear ", layer.width);
    specs.push_back({TensorKind::kHeadWeight,
                     index,
                     0,
                     absl::StrCat("out.", i, ".weight"),
                     {layer.width, inputs},
                     absl::StrCat(width, ", ", from)});
    specs.push_back({TensorKind::kHeadBias,
                     index,
                     0,
                     absl::StrCat("out.", i, ".bias"),
                     {layer.width},
                     width});
    inputs = layer.width;
    from = absl::StrCat("input \"head\"[", i, "] linear ", layer.width);
  }
}

}  // namespace

int64_t TensorSpec::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<TensorSpec> ExpectedTensors(const ModelConfig& config) {
  std::vector<TensorSpec> specs;
  if (config.has_embedding()) {
    specs.push_back({TensorKind::kEmbedding,
                     0,
                     0,
                     "embedding.weight",
                     {config.embedding.num_embeddings, config.input_size},
                     absl::StrCat("\"embedding\" num_embeddings ",
                                  config.embedding.num_embeddings,
                                  ", embedding_dim ", config.input_size)});
  }
  const int64_t rows = int64_t{NumGates(config.cell)} * config.hidden_size;
  const std::string gate_rows = GateRows(config);
  for (int layer = 0; layer < config.num_layers; ++layer) {
    const std::string input =
        layer == 0 ? absl::StrCat("input_size ", config.input_size)
                   : DirectionsWidth(config);
    for (int direction = 0; direction < config.num_directions(); ++direction) {
      const auto add = [&](TensorKind kind, std::string_view base,
                           std::vector<int64_t> shape,
                           std::string explanation) {
        specs.push_back({kind, layer, direction,
                         RecurrentTensorName(base, layer, direction),
                         std::move(shape), std::move(explanation)});
      };
      add(TensorKind::kWeightIh, "weight_ih",
          {rows, LayerInputSize(config, layer)},
          absl::StrCat(gate_rows, ", ", input));
      add(TensorKind::kWeightHh, "weight_hh", {rows, config.hidden_size},
          absl::StrCat(gate_rows, ", hidden ", config.hidden_size));
      if (config.bias) {
        add(TensorKind::kBiasIh, "bias_ih", {rows}, gate_rows);
        add(TensorKind::kBiasHh, "bias_hh", {rows}, gate_rows);
      }
    }
  }
  if (!config.head.empty()) {
    AddSequentialHead(config, specs);
    return specs;
  }
  const std::string outputs = absl::StrCat("output_size ", config.output_size);
  specs.push_back({TensorKind::kHeadWeight,
                   -1,
                   0,
                   "out.weight",
                   {config.output_size,
                    int64_t{config.num_directions()} * config.hidden_size},
                   absl::StrCat(outputs, ", ", DirectionsWidth(config))});
  specs.push_back({TensorKind::kHeadBias,
                   -1,
                   0,
                   "out.bias",
                   {config.output_size},
                   outputs});
  return specs;
}

int64_t NumParameters(const ModelConfig& config) {
  const int64_t hidden = config.hidden_size;
  const int64_t rows = NumGates(config.cell) * hidden;
  const int64_t directions = config.num_directions();
  int64_t total = int64_t{config.embedding.num_embeddings} * config.input_size;
  for (int layer = 0; layer < config.num_layers; ++layer) {
    const int64_t per_direction =
        rows * (LayerInputSize(config, layer) + hidden + (config.bias ? 2 : 0));
    total += directions * per_direction;
  }
  if (config.head.empty()) {
    return total + int64_t{config.output_size} * (directions * hidden + 1);
  }
  int64_t inputs = directions * hidden;
  for (const HeadLayer& layer : config.head) {
    if (layer.kind != HeadLayerKind::kLinear) continue;
    total += int64_t{layer.width} * (inputs + 1);
    inputs = layer.width;
  }
  return total;
}

const std::vector<float>& TensorValues(const Model& model,
                                       const TensorSpec& spec) {
  // One definition of the mapping: the mutable one, on a model we promise
  // not to change through it.
  return MutableTensorValues(const_cast<Model&>(model), spec);
}

std::vector<float>& MutableTensorValues(Model& model, const TensorSpec& spec) {
  if (spec.kind == TensorKind::kEmbedding) return model.embedding_weight;
  if (spec.kind == TensorKind::kHeadWeight ||
      spec.kind == TensorKind::kHeadBias) {
    if (spec.layer < 0) {
      return spec.kind == TensorKind::kHeadWeight ? model.head_weight
                                                  : model.head_bias;
    }
    LinearWeights& linear = model.head_layers[spec.layer];
    return spec.kind == TensorKind::kHeadWeight ? linear.weight : linear.bias;
  }
  LayerWeights& layer = model.layers[static_cast<size_t>(spec.layer) *
                                         model.config.num_directions() +
                                     spec.direction];
  switch (spec.kind) {
    case TensorKind::kWeightIh:
      return layer.weight_ih;
    case TensorKind::kWeightHh:
      return layer.weight_hh;
    case TensorKind::kBiasIh:
      return layer.bias_ih;
    default:
      return layer.bias_hh;
  }
}

}  // namespace rnnserve::model
