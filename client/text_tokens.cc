#include "client/text_tokens.h"

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/common/utf8.h"

namespace rnnserve::client {
namespace {

// The code point of the UTF-8 sequence of `length` bytes at the start of
// `s` (already checked well-formed).
uint32_t DecodeUtf8(std::string_view s, size_t length) {
  if (length == 1) return static_cast<unsigned char>(s[0]);
  static constexpr unsigned char kLeadMask[] = {0, 0, 0x1f, 0x0f, 0x07};
  uint32_t cp = static_cast<unsigned char>(s[0]) & kLeadMask[length];
  for (size_t i = 1; i < length; ++i) {
    cp = (cp << 6) | (static_cast<unsigned char>(s[i]) & 0x3f);
  }
  return cp;
}

}  // namespace

uint32_t LowerLatin(uint32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 0x20;
  // Latin-1: À..Þ but the multiplication sign.
  if (cp >= 0xc0 && cp <= 0xde && cp != 0xd7) return cp + 0x20;
  // Latin Extended-A pairs its letters upper then lower, from an even code
  // point in these ranges and from an odd one in the others.
  // İ (U+0130) is left alone: its lower case is two characters, i and a
  // combining dot, not the dotless ı (U+0131) that follows it.
  if ((cp >= 0x100 && cp <= 0x137 && cp != 0x130) ||
      (cp >= 0x14a && cp <= 0x177)) {
    return cp % 2 == 0 ? cp + 1 : cp;
  }
  if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e)) {
    return cp % 2 == 1 ? cp + 1 : cp;
  }
  if (cp == 0x178) return 0xff;  // Ÿ
  return cp;
}

absl::StatusOr<std::vector<int64_t>> EncodeText(
    std::string_view text, const v1::Tokenizer& tokenizer) {
  if (tokenizer.type() != "characters") {
    return absl::FailedPreconditionError(
        absl::StrCat("the model's tokenizer has type \"", tokenizer.type(),
                     "\"; only \"characters\" is known"));
  }
  absl::flat_hash_map<std::string, int64_t> ids;
  for (int i = 0; i < tokenizer.tokens_size(); ++i) {
    if (tokenizer.has_unknown_id() &&
        static_cast<uint32_t>(i) == tokenizer.unknown_id()) {
      continue;
    }
    ids.emplace(tokenizer.tokens(i), i);
  }
  std::vector<int64_t> out;
  for (size_t at = 0; at < text.size();) {
    const unsigned char lead = static_cast<unsigned char>(text[at]);
    const size_t length = lead < 0x80 ? 1 : Utf8SequenceLength(text.substr(at));
    if (length == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--text is not valid UTF-8 at byte ", at, " (character ",
                       out.size(), ")"));
    }
    uint32_t cp = DecodeUtf8(text.substr(at), length);
    if (tokenizer.lowercase()) cp = LowerLatin(cp);
    std::string character;
    AppendUtf8(cp, &character);
    const auto it = ids.find(character);
    if (it != ids.end()) {
      out.push_back(it->second);
    } else if (tokenizer.has_unknown_id()) {
      out.push_back(tokenizer.unknown_id());
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--text character ", out.size(), " \"",
          std::string(text.substr(at, length)),
          "\" is not in the model's tokens, and the tokenizer has no "
          "unknown_id"));
    }
    at += length;
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        "--text is empty: give at least one "
        "character");
  }
  return out;
}

}  // namespace rnnserve::client
