// The token ids of rnnctl's --tokens and --text flags, shared by classify
// and stream: "1,2,3" parsed and checked against the model's vocabulary, or
// text encoded with the model's tokenizer (text_tokens.h).
//
// Plain functions of their arguments; thread-compatible.
#ifndef RNNSERVE_CLIENT_TOKEN_FLAGS_H_
#define RNNSERVE_CLIENT_TOKEN_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rnnserve/v1/inference.pb.h"

namespace rnnserve::client {

// --tokens "1,2,3": one id per step, each in [0, vocabulary_size), for a
// model that reads token ids (FailedPrecondition otherwise, pointing to
// `value_flags`, the command's flags for values, e.g. "--csv"). A bad id is
// InvalidArgument naming "--tokens[position]".
absl::StatusOr<std::vector<int64_t>> ParseTokenIds(
    absl::string_view flag_text, const v1::ModelInfo& model,
    absl::string_view value_flags);

// --text: one id per character, with the model's tokenizer (FailedPrecondition
// naming --text when the model has none, pointing to --tokens or to
// `value_flags`). Bad text is InvalidArgument naming the character.
absl::StatusOr<std::vector<int64_t>> EncodeTextFlag(
    const std::string& text, const v1::ModelInfo& model,
    absl::string_view value_flags);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_TOKEN_FLAGS_H_
