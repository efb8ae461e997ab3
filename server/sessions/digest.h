// Digests in lowercase hex: SHA-1 names Redis scripts; SHA-256 turns a
// session token into a key that cannot be used as a token, and tells a
// retried chunk from another.
#ifndef RNNSERVE_SERVER_SESSIONS_DIGEST_H_
#define RNNSERVE_SERVER_SESSIONS_DIGEST_H_

#include <initializer_list>
#include <string>
#include <string_view>

namespace rnnserve::sessions {

std::string Sha1Hex(std::string_view data);
std::string Sha256Hex(std::string_view data);
// The SHA-256 of a list of byte strings, each with its length, so that
// {"ab", "c"} and {"a", "bc"} differ.
std::string Sha256Hex(std::initializer_list<std::string_view> parts);

}  // namespace rnnserve::sessions

#endif  // RNNSERVE_SERVER_SESSIONS_DIGEST_H_
