#include "server/engine/head.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>

namespace rnnserve::engine {

LinearHead::LinearHead(std::vector<float> weight, std::vector<float> bias)
    : weight_(std::move(weight)),
      bias_(std::move(bias)),
      inputs_(bias_.empty() ? 0
                            : static_cast<int>(weight_.size() / bias_.size())) {
}

void LinearHead::Apply(const float* x, float* out) const {
  const float* row = weight_.data();
  for (size_t o = 0; o < bias_.size(); ++o, row += inputs_) {
    float sum = 0.0f;
    for (int i = 0; i < inputs_; ++i) sum += row[i] * x[i];
    out[o] = sum + bias_[o];
  }
}

void Softmax(std::span<const float> logits, std::span<float> probabilities) {
  if (logits.empty()) return;
  const float max = *std::max_element(logits.begin(), logits.end());
  float sum = 0.0f;
  for (size_t i = 0; i < logits.size(); ++i) {
    probabilities[i] = std::exp(logits[i] - max);
    sum += probabilities[i];
  }
  for (float& p : probabilities.first(logits.size())) p /= sum;
}

}  // namespace rnnserve::engine
