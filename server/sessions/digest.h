// Digests in lowercase hex: SHA-1 names Redis scripts; SHA-256 turns a
// session token into a key that cannot be used as a token.
#ifndef RNNSERVE_SERVER_SESSIONS_DIGEST_H_
#define RNNSERVE_SERVER_SESSIONS_DIGEST_H_

#include <string>
#include <string_view>

namespace rnnserve::sessions {

std::string Sha1Hex(std::string_view data);
std::string Sha256Hex(std::string_view data);

}  // namespace rnnserve::sessions

#endif  // RNNSERVE_SERVER_SESSIONS_DIGEST_H_
