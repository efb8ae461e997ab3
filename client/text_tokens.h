// Text to token ids with a model's tokenizer (ModelInfo.tokenizer), for
// `rnnctl classify --text` against a model with an embedding.
#ifndef RNNSERVE_CLIENT_TEXT_TOKENS_H_
#define RNNSERVE_CLIENT_TEXT_TOKENS_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "rnnserve/v1/inference.pb.h"

namespace rnnserve::client {

// The ids of `text`'s characters under a "characters" tokenizer: the text
// must be UTF-8; with `lowercase` each letter is first lower-cased (ASCII,
// Latin-1 and Latin Extended-A, the letters whose lower case is one
// character); a character the tokens do not hold becomes unknown_id, or is
// refused when the tokenizer has none. Errors name the character and its
// position (in characters, from 0).
absl::StatusOr<std::vector<int64_t>> EncodeText(std::string_view text,
                                                const v1::Tokenizer& tokenizer);

// The lower case of a Latin letter (see EncodeText); any other code point
// is returned as it is.
uint32_t LowerLatin(uint32_t code_point);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_TEXT_TOKENS_H_
