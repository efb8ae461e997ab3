#include "server/service/bearer_tokens.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/file_reader.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"

namespace rnnserve::service {
namespace {

// A tokens file is a few lines; anything bigger is the wrong file.
constexpr uint64_t kMaxFileBytes = 1 << 20;

// RFC 6750: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" /
// "/" ) *"=". Also what a gRPC metadata value may carry unescaped.
bool IsB64Token(std::string_view token) {
  size_t i = 0;
  while (
      i < token.size() &&
      (absl::ascii_isalnum(static_cast<unsigned char>(token[i])) ||
       std::string_view("-._~+/").find(token[i]) != std::string_view::npos)) {
    ++i;
  }
  if (i == 0) return false;
  while (i < token.size() && token[i] == '=') ++i;
  return i == token.size();
}

}  // namespace

BearerTokens::Digest BearerTokens::Sha256(std::string_view text) {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(),
         digest.data());
  return digest;
}

absl::StatusOr<BearerTokens> BearerTokens::Parse(std::string_view text) {
  BearerTokens tokens;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(AbslView(text), '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    // The messages never quote the line: it may be a real token.
    const std::string_view token(line.data(), line.size());
    if (!IsB64Token(token)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "line ", line_number,
          ": not a bearer token (one token per line, made of letters, digits "
          "and -._~+/ with optional trailing '='; '#' starts a comment "
          "line)"));
    }
    if (token.size() < kMinLength) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": a token of ", token.size(),
                       " characters is too easy to guess; use at least ",
                       kMinLength, " (e.g. from `openssl rand -base64 32`)"));
    }
    tokens.digests_.push_back(Sha256(token));
  }
  if (tokens.digests_.empty()) {
    return absl::InvalidArgumentError(
        "no token in the file (only blank or comment lines); without tokens "
        "no call could be authenticated");
  }
  return tokens;
}

absl::StatusOr<BearerTokens> BearerTokens::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path, kMaxFileBytes));
  absl::StatusOr<BearerTokens> tokens = Parse(text);
  // Only the digests outlive the load.
  OPENSSL_cleanse(text.data(), text.size());
  if (!tokens.ok()) {
    return absl::Status(tokens.status().code(),
                        absl::StrCat(path, ": ", tokens.status().message()));
  }
  return tokens;
}

namespace {

constexpr std::string_view kScheme = "bearer ";

bool IsBearer(std::string_view authorization) {
  return authorization.size() > kScheme.size() &&
         absl::EqualsIgnoreCase(
             AbslView(authorization.substr(0, kScheme.size())),
             AbslView(kScheme));
}

}  // namespace

std::string BearerTokens::CallerId(std::string_view authorization) {
  if (!IsBearer(authorization)) return "";
  const Digest digest = Sha256(authorization.substr(kScheme.size()));
  return std::string(reinterpret_cast<const char*>(digest.data()),
                     digest.size());
}

bool BearerTokens::Accepts(std::string_view authorization) const {
  if (!IsBearer(authorization)) return false;
  const Digest presented = Sha256(authorization.substr(kScheme.size()));
  // Every digest is compared, with no early exit: the time taken says
  // nothing about which token matched or how closely.
  int matches = 0;
  for (const Digest& digest : digests_) {
    matches |=
        CRYPTO_memcmp(presented.data(), digest.data(), digest.size()) == 0;
  }
  return matches != 0;
}

}  // namespace rnnserve::service
