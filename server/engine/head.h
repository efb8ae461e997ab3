// The model's linear head and softmax, on host floats.
#ifndef RNNSERVE_SERVER_ENGINE_HEAD_H_
#define RNNSERVE_SERVER_ENGINE_HEAD_H_

#include <span>
#include <vector>

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

// probabilities = softmax(logits), computed stably (shifted by the maximum).
void Softmax(std::span<const float> logits, std::span<float> probabilities);

}  // namespace rnnserve::engine

#endif  // RNNSERVE_SERVER_ENGINE_HEAD_H_
