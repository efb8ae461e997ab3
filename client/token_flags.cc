#include "client/token_flags.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/text_tokens.h"

namespace rnnserve::client {

absl::StatusOr<std::vector<int64_t>> ParseTokenIds(
    absl::string_view flag_text, const v1::ModelInfo& model,
    absl::string_view value_flags) {
  if (model.input_kind() != v1::INPUT_KIND_TOKEN_IDS) {
    return absl::FailedPreconditionError(
        absl::StrCat("--tokens: model \"", model.name(),
                     "\" reads values, not token ids; use ", value_flags));
  }
  std::vector<int64_t> ids;
  for (absl::string_view part : absl::StrSplit(flag_text, ',')) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &id) || id < 0 ||
        id >= model.vocabulary_size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tokens[", ids.size(), "]: \"", part,
                       "\" is not a token id in [0, ", model.vocabulary_size(),
                       ") (model \"", model.name(), "\")"));
    }
    ids.push_back(id);
  }
  return ids;
}

absl::StatusOr<std::vector<int64_t>> EncodeTextFlag(
    const std::string& text, const v1::ModelInfo& model,
    absl::string_view value_flags) {
  if (!model.has_tokenizer()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--text: model \"", model.name(),
                     "\" has no tokenizer (config \"tokenizer\"); ",
                     model.input_kind() == v1::INPUT_KIND_TOKEN_IDS
                         ? "give its token ids with --tokens"
                         : absl::StrCat("it reads values: use ", value_flags)));
  }
  return EncodeText(text, model.tokenizer());
}

}  // namespace rnnserve::client
