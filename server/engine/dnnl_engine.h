// The engine on oneDNN's recurrent primitives.
#ifndef RNNSERVE_SERVER_ENGINE_DNNL_ENGINE_H_
#define RNNSERVE_SERVER_ENGINE_DNNL_ENGINE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "server/engine/engine.h"
#include "server/model/model.h"

namespace rnnserve::engine {

struct DnnlEngineOptions {
  // Primitives are made for one (steps, batch) shape and cost milliseconds
  // to make, so they are cached; beyond this many shapes the least recently
  // used is dropped. Default 1024.
  int max_cached_plans = 1024;
};

// Validates `model`, converts its weights once and returns an engine that
// runs it. The model is copied; the caller may drop it.
absl::StatusOr<std::unique_ptr<Engine>> CreateDnnlEngine(
    const model::Model& model, const DnnlEngineOptions& options = {});

}  // namespace rnnserve::engine

#endif  // RNNSERVE_SERVER_ENGINE_DNNL_ENGINE_H_
