#include "server/engine/batch_data.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace rnnserve::engine {

float* Reserve(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

size_t ReadoutCarry(const model::ModelConfig& config) {
  return config.classify_state_size() - config.state_size();
}

void GatherState(const model::ModelConfig& config, const Batch& batch,
                 const LayerGroup& group, bool cell, float* dst) {
  const size_t hidden = config.hidden_size;
  const int dirs = config.num_directions();
  const size_t offset =
      cell ? static_cast<size_t>(config.num_layers) * dirs * hidden : 0;
  const int n = batch.size();
  for (int l = 0; l < group.num_layers; ++l) {
    for (int d = 0; d < dirs; ++d) {
      const size_t from =
          offset + ((group.first_layer + l) * dirs + d) * hidden;
      for (int b = 0; b < n; ++b) {
        float* to =
            dst + ((static_cast<size_t>(l) * dirs + d) * n + b) * hidden;
        const float* state = batch.state_in[b];
        if (state == nullptr) {
          std::fill(to, to + hidden, 0.0f);
        } else {
          std::memcpy(to, state + from, hidden * sizeof(float));
        }
      }
    }
  }
}

void ScatterState(const model::ModelConfig& config, const Batch& batch,
                  const LayerGroup& group, bool cell, const float* src) {
  const size_t hidden = config.hidden_size;
  const int dirs = config.num_directions();
  const size_t offset =
      cell ? static_cast<size_t>(config.num_layers) * dirs * hidden : 0;
  const int n = batch.size();
  for (int l = 0; l < group.num_layers; ++l) {
    for (int d = 0; d < dirs; ++d) {
      const size_t to = offset + ((group.first_layer + l) * dirs + d) * hidden;
      for (int b = 0; b < n; ++b) {
        if (batch.state_out[b] == nullptr) continue;
        const float* from =
            src + ((static_cast<size_t>(l) * dirs + d) * n + b) * hidden;
        std::memcpy(batch.state_out[b] + to, from, hidden * sizeof(float));
      }
    }
  }
}

const float* CopyInputs(const model::ModelConfig& config, const Batch& batch,
                        const std::vector<float>& embedding,
                        std::vector<float>& src_buffer) {
  // Time-major input: step t of sequence b at (t * n + b). The padding is
  // zeros, so that it cannot produce infinities or NaNs; the steps it feeds
  // are never read.
  const size_t input = config.input_size;
  const int steps = batch.steps;
  const int n = batch.size();
  float* src = Reserve(src_buffer, static_cast<size_t>(steps) * n * input);
  for (int b = 0; b < n; ++b) {
    for (int t = 0; t < steps; ++t) {
      float* to = src + (static_cast<size_t>(t) * n + b) * input;
      if (t < batch.valid[b] && batch.tokens != nullptr) {
        // The embedding lookup: the row as stored, exactly.
        const size_t row = static_cast<size_t>((*batch.tokens)[b][t]);
        std::memcpy(to, embedding.data() + row * input, input * sizeof(float));
      } else if (t < batch.valid[b]) {
        std::memcpy(to, batch.inputs[b] + t * input, input * sizeof(float));
      } else {
        std::fill(to, to + input, 0.0f);
      }
    }
  }
  return src;
}

void AccumulateReadout(const model::ModelConfig& config,
                       const ClassifyItem& item, const Batch& batch,
                       const float* out, int b, float* acc) {
  const size_t width = config.readout_size();
  const bool mean = config.readout == model::Readout::kMean;
  if (batch.start == 0) {
    if (!item.state_in.empty()) {
      const size_t tail = item.state_in.size() - ReadoutCarry(config);
      std::copy(item.state_in.begin() + tail, item.state_in.end(), acc);
    } else {
      // No step yet: a sum of 0 over 0 steps, or a maximum below all.
      std::fill(acc, acc + width,
                mean ? 0.0f : -std::numeric_limits<float>::infinity());
      if (mean) acc[width] = 0.0f;
    }
  }
  const size_t n = batch.size();
  for (int t = 0; t < batch.valid[b]; ++t) {
    const float* row = out + (t * n + b) * width;
    if (mean) {
      for (size_t i = 0; i < width; ++i) acc[i] += row[i];
    } else {
      for (size_t i = 0; i < width; ++i) acc[i] = std::max(acc[i], row[i]);
    }
  }
  if (mean) acc[width] += static_cast<float>(batch.valid[b]);
}

const float* ReadoutOf(const model::ModelConfig& config,
                       const ClassifyItem& item, const Batch& batch,
                       const float* out, int b, const float* acc,
                       float* buffer) {
  const size_t width = config.readout_size();
  const size_t n = batch.size();
  // The output at its own last step, exact despite any padding after it
  // (causality); for a bidirectional model (never padded) the forward
  // direction's last step beside the reverse direction's first, as
  // PyTorch's output[:, -1, :].
  const size_t last = item.steps - batch.start - 1;
  const float* last_row = out + (last * n + b) * width;
  switch (config.readout) {
    case model::Readout::kLastOutput:
      return last_row;
    case model::Readout::kFinalState: {
      // h_n of the top layer: the forward direction's state after the last
      // step, which is its output there; the reverse direction's after its
      // own last step, step 0 (a bidirectional item is one segment).
      if (!config.bidirectional) return last_row;
      const size_t h = config.hidden_size;
      std::copy(last_row, last_row + h, buffer);
      const float* first_row = out + static_cast<size_t>(b) * width;
      std::copy(first_row + h, first_row + 2 * h, buffer + h);
      return buffer;
    }
    case model::Readout::kMean: {
      const float count = acc[width];
      for (size_t i = 0; i < width; ++i) buffer[i] = acc[i] / count;
      return buffer;
    }
    case model::Readout::kMax:
      return acc;
  }
  return last_row;
}

}  // namespace rnnserve::engine
