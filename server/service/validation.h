// Checks requests against a model and the server's limits before any work.
// Every error is INVALID_ARGUMENT and names the field and what was expected.
#ifndef RNNSERVE_SERVER_SERVICE_VALIDATION_H_
#define RNNSERVE_SERVER_SERVICE_VALIDATION_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "rnnserve/v1/inference.pb.h"
#include "server/model/model.h"
#include "server/service/limits.h"

namespace rnnserve::service {

// INVALID_ARGUMENT "<field>: not valid UTF-8" unless `value` is
// well-formed UTF-8. Request bodies are scanned with it before they are
// parsed (text_fields.h), so that a bad text field is refused here, by
// name, rather than by the parser.
absl::Status CheckUtf8(const char* field, std::string_view value);

// FAILED_PRECONDITION, naming the RPC to call instead, unless the model
// serves `task`.
absl::Status CheckTask(const model::ModelConfig& config, model::Task task);

// One sequence or chunk: 1..max_steps steps (0 allowed when `allow_empty`),
// steps * input_size values, all finite; a model that reads token ids
// (config "embedding") is refused, as this form carries none (Classify and
// Regress requests carry token_ids and are checked by ValidateClassify and
// ValidateChunk). Messages name the fields under
// `prefix`, e.g. "sequences[3]" gives "sequences[3].values"; "" gives
// "values".
absl::Status ValidateSteps(const std::string& prefix, uint32_t steps,
                           const google::protobuf::RepeatedField<float>& values,
                           const model::ModelConfig& config,
                           const Limits& limits, bool allow_empty);

// The sequences of a Classify request (the model is already resolved).
absl::Status ValidateClassify(const v1::ClassifyRequest& request,
                              const model::ModelConfig& config,
                              const Limits& limits);

// The chunk of a Regress or RegressChunk request: steps may be 0 (a request
// that resets or ends the session, or reads its position).
absl::Status ValidateChunk(const v1::RegressRequest& request,
                           const model::ModelConfig& config,
                           const Limits& limits);

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_VALIDATION_H_
