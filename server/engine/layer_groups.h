// How a model's layers map onto recurrent primitives, and its weights
// rearranged into the library's logical layouts. Plain C++ so that the gate
// shuffles can be tested without running anything.
#ifndef RNNSERVE_SERVER_ENGINE_LAYER_GROUPS_H_
#define RNNSERVE_SERVER_ENGINE_LAYER_GROUPS_H_

#include <vector>

#include "server/model/model.h"

namespace rnnserve::engine {

// Consecutive layers that one primitive runs: they share one input width.
// A bidirectional model needs one group per layer, because each layer feeds
// the concatenation of both directions to the next.
struct LayerGroup {
  int first_layer = 0;
  int num_layers = 0;
  int input_size = 0;  // Width of the group's input at each step.
};

std::vector<LayerGroup> PlanLayerGroups(const model::ModelConfig& config);

// Gate blocks of the library's cell: PyTorch's count, plus one bias block for
// the GRU, whose hidden-side bias of the n gate stays apart (the
// linear-before-reset GRU).
int LibraryBiasGates(model::Cell cell);

// A group's weights, in the library's plain layouts.
struct GroupWeights {
  std::vector<float> weights_layer;  // ldgoi: (layers, dirs, gates, H, input)
  std::vector<float> weights_iter;   // ldgoi: (layers, dirs, gates, H, H)
  std::vector<float> bias;           // ldgo: (layers, dirs, bias gates, H)
};

// Rearranges PyTorch's weights of `group` (the model must be valid):
// - LSTM gates i, f, g, o are the library's order already;
// - GRU: PyTorch's r, z, n become update (z), reset (r), output (n), and the
//   bias is b_iz + b_hz, b_ir + b_hr, b_in, b_hn;
// - otherwise the bias is b_ih + b_hh; zeros for a model without biases.
GroupWeights ConvertGroupWeights(const model::Model& model,
                                 const LayerGroup& group);

}  // namespace rnnserve::engine

#endif  // RNNSERVE_SERVER_ENGINE_LAYER_GROUPS_H_
