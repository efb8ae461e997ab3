// Checks of the items a call gives the engine against the model's config:
// step counts, inputs or token ids, state and output sizes. Plain C++, so
// that the checks stand apart from running the primitives.
#ifndef RNNSERVE_SERVER_ENGINE_ITEM_CHECKS_H_
#define RNNSERVE_SERVER_ENGINE_ITEM_CHECKS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "server/engine/engine.h"
#include "server/model/model.h"

namespace rnnserve::engine {

// Item `i` of a Classify (or Regress) call: OK, or INVALID_ARGUMENT naming
// the call, the item and its field (steps, inputs, tokens, state_in,
// state_out, logits, probabilities, outputs) and what was expected.
absl::Status CheckItem(const model::ModelConfig& config, size_t i,
                       const ClassifyItem& item);
absl::Status CheckItem(const model::ModelConfig& config, size_t i,
                       const RegressItem& item);

}  // namespace rnnserve::engine

#endif  // RNNSERVE_SERVER_ENGINE_ITEM_CHECKS_H_
