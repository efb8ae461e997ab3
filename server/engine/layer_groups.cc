#include "server/engine/layer_groups.h"

#include <algorithm>
#include <cstddef>

namespace rnnserve::engine {
namespace {

using model::Cell;

// The PyTorch gate block that feeds the library's gate `gate`.
int SourceGate(Cell cell, int gate) {
  if (cell == Cell::kGru && gate < 2) return 1 - gate;  // Swap r and z.
  return gate;
}

// Appends `rows` of a (gates * hidden, width) PyTorch matrix in the
// library's gate order.
void AppendGates(Cell cell, const std::vector<float>& src, int hidden,
                 int width, std::vector<float>& dst) {
  const int gates = model::NumGates(cell);
  const size_t block = static_cast<size_t>(hidden) * width;
  for (int g = 0; g < gates; ++g) {
    const auto begin = src.begin() + SourceGate(cell, g) * block;
    dst.insert(dst.end(), begin, begin + block);
  }
}

void AppendBias(Cell cell, const model::LayerWeights& w, int hidden,
                std::vector<float>& dst) {
  const int gates = model::NumGates(cell);
  const size_t first = dst.size();
  dst.resize(first + static_cast<size_t>(LibraryBiasGates(cell)) * hidden,
             0.0f);
  if (w.bias_ih.empty()) return;  // A model without biases: zeros.
  for (int g = 0; g < gates; ++g) {
    const int s = SourceGate(cell, g);
    for (int o = 0; o < hidden; ++o) {
      const size_t i = static_cast<size_t>(s) * hidden + o;
      // The GRU's n gate keeps b_hn apart, in the extra fourth block.
      const bool keep_apart = cell == Cell::kGru && g == 2;
      dst[first + g * hidden + o] =
          keep_apart ? w.bias_ih[i] : w.bias_ih[i] + w.bias_hh[i];
      if (keep_apart) dst[first + 3 * hidden + o] = w.bias_hh[i];
    }
  }
}

}  // namespace

std::vector<LayerGroup> PlanLayerGroups(const model::ModelConfig& config) {
  std::vector<LayerGroup> groups;
  for (int layer = 0; layer < config.num_layers; ++layer) {
    const int width = model::LayerInputSize(config, layer);
    if (!groups.empty() && !config.bidirectional &&
        groups.back().input_size == width) {
      ++groups.back().num_layers;
    } else {
      groups.push_back({layer, 1, width});
    }
  }
  return groups;
}

int LibraryBiasGates(Cell cell) {
  return model::NumGates(cell) + (cell == Cell::kGru ? 1 : 0);
}

GroupWeights ConvertGroupWeights(const model::Model& model,
                                 const LayerGroup& group) {
  const model::ModelConfig& c = model.config;
  const int dirs = c.num_directions();
  GroupWeights out;
  for (int l = group.first_layer; l < group.first_layer + group.num_layers;
       ++l) {
    for (int d = 0; d < dirs; ++d) {
      const model::LayerWeights& w = model.layers[l * dirs + d];
      AppendGates(c.cell, w.weight_ih, c.hidden_size, group.input_size,
                  out.weights_layer);
      AppendGates(c.cell, w.weight_hh, c.hidden_size, c.hidden_size,
                  out.weights_iter);
      AppendBias(c.cell, w, c.hidden_size, out.bias);
    }
  }
  return out;
}

}  // namespace rnnserve::engine
