// Reads a model folder's config.json (format v1, docs/model-format.md).
#ifndef RNNSERVE_SERVER_MODEL_CONFIG_H_
#define RNNSERVE_SERVER_MODEL_CONFIG_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "server/model/model.h"

namespace rnnserve::model {

// Parses the text of a config.json. `source` names the file in messages,
// which also name the key and what was expected, e.g.
//   models/x/config.json: "hidden_size" must be an integer >= 1, got "abc"
// Unknown keys, missing required keys, values of the wrong JSON type and
// anything ValidateConfig refuses are InvalidArgument. The result's `name`
// is left empty: a model's name is its folder's, which the loader knows.
absl::StatusOr<ModelConfig> ParseModelConfig(std::string_view json,
                                             std::string_view source);

}  // namespace rnnserve::model

#endif  // RNNSERVE_SERVER_MODEL_CONFIG_H_
