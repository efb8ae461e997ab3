// The model's head (a Linear, or an nn.Sequential of Linear and activation
// layers) and softmax, on host floats.
#ifndef RNNSERVE_SERVER_ENGINE_HEAD_H_
#define RNNSERVE_SERVER_ENGINE_HEAD_H_

#include <span>
#include <vector>

#include "server/model/model.h"

namespace rnnserve::engine {

// out = weight x + bias, with weight (outputs, inputs) row-major, as
// PyTorch's nn.Linear. Immutable after construction; thread-safe.
class LinearHead {
 public:
  LinearHead(std::vector<float> weight, std::vector<float> bias);

  int inputs() const { return inputs_; }
  int outputs() const { return static_cast<int>(bias_.size()); }

  // x has inputs() floats, out has outputs() floats.
  void Apply(const float* x, float* out) const;

 private:
  std::vector<float> weight_;
  std::vector<float> bias_;
  int inputs_;
};

// A model's whole head: its single Linear `out`, or the modules of its
// Sequential `out` in order (dropout skipped: inference). Immutable after
// construction; thread-safe, the caller lends the scratch space.
class Head {
 public:
  // `model` must be valid (model::ValidateModel).
  explicit Head(const model::Model& model);

  // Floats of scratch Apply needs.
  int scratch_size() const { return scratch_size_; }

  // x has the model's readout_size() floats, out output_size() floats,
  // scratch scratch_size() floats; none may overlap.
  void Apply(const float* x, float* out, float* scratch) const;

 private:
  struct Step {
    model::HeadLayerKind kind;
    int width;        // Floats the step leaves.
    int linear = -1;  // Into linears_, for a linear step.
  };

  std::vector<LinearHead> linears_;
  std::vector<Step> steps_;  // Empty: the single linears_[0].
  int scratch_size_ = 0;
};

// probabilities = softmax(logits), computed stably (shifted by the maximum).
void Softmax(std::span<const float> logits, std::span<float> probabilities);

// Applies a stream model's output activation to one step's n outputs in
// place: torch.sigmoid elementwise, or torch.softmax over the n values.
void ApplyOutputActivation(model::OutputActivation activation, float* x, int n);

}  // namespace rnnserve::engine

#endif  // RNNSERVE_SERVER_ENGINE_HEAD_H_
