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

namespace {

// PyTorch's activations; gelu in its exact (erf) form, nn.GELU's default.
void Activate(model::HeadLayerKind kind, float* x, int n) {
  switch (kind) {
    case model::HeadLayerKind::kRelu:
      for (int i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
      return;
    case model::HeadLayerKind::kTanh:
      for (int i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
      return;
    case model::HeadLayerKind::kSigmoid:
      for (int i = 0; i < n; ++i) x[i] = 1.0f / (1.0f + std::exp(-x[i]));
      return;
    case model::HeadLayerKind::kGelu:
      for (int i = 0; i < n; ++i) {
        x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
      }
      return;
    default:
      return;
  }
}

}  // namespace

Head::Head(const model::Model& model) {
  const model::ModelConfig& config = model.config;
  if (config.head.empty()) {
    linears_.emplace_back(model.head_weight, model.head_bias);
    return;
  }
  // Each step reads one half of the scratch and writes the other.
  int width = config.readout_size();
  int widest = width;
  for (size_t i = 0; i < config.head.size(); ++i) {
    const model::HeadLayer& layer = config.head[i];
    if (layer.kind == model::HeadLayerKind::kDropout) continue;
    Step step{layer.kind, width};
    if (layer.kind == model::HeadLayerKind::kLinear) {
      step.linear = static_cast<int>(linears_.size());
      linears_.emplace_back(model.head_layers[i].weight,
                            model.head_layers[i].bias);
      step.width = width = layer.width;
    }
    widest = std::max(widest, width);
    steps_.push_back(step);
  }
  scratch_size_ = 2 * widest;
}

void Head::Apply(const float* x, float* out, float* scratch) const {
  if (steps_.empty()) {
    linears_[0].Apply(x, out);
    return;
  }
  const int half = scratch_size_ / 2;
  const float* in = x;
  float* buffers[2] = {scratch, scratch + half};
  int next = 0;
  for (size_t s = 0; s < steps_.size(); ++s) {
    const Step& step = steps_[s];
    // The last step is the last linear (validation): it writes `out`.
    float* dst = s + 1 == steps_.size() ? out : buffers[next];
    if (step.linear >= 0) {
      linears_[step.linear].Apply(in, dst);
    } else {
      if (dst != in) std::copy(in, in + step.width, dst);
      Activate(step.kind, dst, step.width);
    }
    in = dst;
    next = 1 - next;
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

void ApplyOutputActivation(model::OutputActivation activation, float* x,
                           int n) {
  switch (activation) {
    case model::OutputActivation::kSigmoid:
      Activate(model::HeadLayerKind::kSigmoid, x, n);
      return;
    case model::OutputActivation::kSoftmax:
      // Softmax reads each logit before writing its probability: in place
      // is safe.
      Softmax(std::span<const float>(x, n), std::span<float>(x, n));
      return;
    case model::OutputActivation::kNone:
      return;
  }
}

}  // namespace rnnserve::engine
