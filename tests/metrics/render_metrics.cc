// Prints what /metrics serves for the seed models' shapes, for checks that
// need the exported names outside C++ (tests/deploy/check_promql.py).
#include <iostream>

#include "server/metrics/metrics.h"
#include "tests/metrics/test_models.h"

int main() {
  rnnserve::metrics::Metrics metrics({"0.0.0", "render"},
                                     rnnserve::metrics::testing::SeedConfigs());
  metrics.SetSessionStoreBackend("redis");
  std::cout << metrics.Render();
  return std::cout.good() ? 0 : 1;
}
