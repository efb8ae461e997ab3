// Prints what /metrics serves for the seed models' shapes, for checks that
// need the exported names outside C++ (tests/deploy/check_promql.py).
#include <iostream>

#include "server/metrics/metrics.h"
#include "tests/metrics/test_models.h"

int main() {
  rnnserve::metrics::Metrics metrics({"0.0.0", "render"},
                                     rnnserve::metrics::testing::SeedConfigs());
  metrics.SetSessionStoreBackend("redis");
  // The version series that exist only once something happened.
  for (const rnnserve::model::ModelConfig& config :
       rnnserve::metrics::testing::SeedConfigs()) {
    metrics.ModelLoadDone(config.name, config.version, true);
    metrics.SetModelVersionState(config.name, config.version, "ready");
  }
  std::cout << metrics.Render();
  return std::cout.good() ? 0 : 1;
}
