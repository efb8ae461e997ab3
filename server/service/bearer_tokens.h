// The bearer tokens that may call rnnserve.v1.Inference, and the check of a
// call's `authorization` header against them.
#ifndef RNNSERVE_SERVER_SERVICE_BEARER_TOKENS_H_
#define RNNSERVE_SERVER_SERVICE_BEARER_TOKENS_H_

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rnnserve::service {

// Holds only the SHA-256 digests of the tokens, never the tokens, so that
// nothing can log them. Accepts() compares digests in constant time against
// every configured token: its duration does not depend on how much of a
// token a caller guessed right, on which token matched, nor on the
// configured tokens' lengths. Immutable, hence thread-safe.
class BearerTokens {
 public:
  // Fewest characters of a token: shorter ones are guessable.
  static constexpr size_t kMinLength = 16;

  // Parses a tokens file: one token per line; surrounding whitespace,
  // blank lines and lines starting with '#' are ignored. A token is an
  // RFC 6750 b64token (letters, digits, "-._~+/", then '=' padding) of at
  // least kMinLength characters. INVALID_ARGUMENT, naming the line but not
  // echoing it, for anything else or when no token is left.
  static absl::StatusOr<BearerTokens> Parse(std::string_view text);

  // Reads and parses the file at `path`; messages name the file.
  static absl::StatusOr<BearerTokens> Load(const std::string& path);

  // True when `authorization` is "Bearer <token>" (the scheme in any case)
  // for one of the tokens.
  bool Accepts(std::string_view authorization) const;

  int size() const { return static_cast<int>(digests_.size()); }

  // Who calls with `authorization` ("Bearer <token>", already Accepted):
  // the token's SHA-256 digest (32 bytes), the same for every spelling of
  // the scheme. Quotas and session owners are keyed by it, so that no
  // token is kept anywhere. Empty when `authorization` is no bearer token.
  static std::string CallerId(std::string_view authorization);

 private:
  using Digest = std::array<unsigned char, 32>;
  static Digest Sha256(std::string_view text);

  std::vector<Digest> digests_;
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_BEARER_TOKENS_H_
