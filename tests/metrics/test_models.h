// Model configurations and traffic shared by the metrics tests.
#ifndef RNNSERVE_TESTS_METRICS_TEST_MODELS_H_
#define RNNSERVE_TESTS_METRICS_TEST_MODELS_H_

#include <string>
#include <vector>

#include "server/model/model.h"

namespace rnnserve::metrics::testing {

// The two seed models' shapes: an LSTM classifier and a vanilla RNN
// regressor.
inline std::vector<model::ModelConfig> SeedConfigs() {
  return {
      {.name = "fashion_lstm",
       .version = "1",
       .cell = model::Cell::kLstm,
       .input_size = 28,
       .hidden_size = 64,
       .output_size = 10,
       .task = model::Task::kClassification,
       .labels = {},
       .description = "test"},
      {.name = "sine_rnn",
       .version = "2024-01",
       .cell = model::Cell::kRnnTanh,
       .input_size = 1,
       .hidden_size = 32,
       .output_size = 1,
       .task = model::Task::kRegression,
       .labels = {},
       .description = "test"},
  };
}

// Seed config `index` of SeedConfigs() as version `version`.
inline model::ModelConfig SeedVersion(size_t index,
                                      const std::string& version) {
  model::ModelConfig config = SeedConfigs()[index];
  config.version = version;
  return config;
}

}  // namespace rnnserve::metrics::testing

#endif  // RNNSERVE_TESTS_METRICS_TEST_MODELS_H_
