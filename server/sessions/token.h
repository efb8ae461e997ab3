// Session tokens: the only proof that a caller owns a session.
#ifndef RNNSERVE_SERVER_SESSIONS_TOKEN_H_
#define RNNSERVE_SERVER_SESSIONS_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"

namespace rnnserve::sessions {

// Random bytes in a token: 256 bits, so guessing one is hopeless.
inline constexpr int kTokenBytes = 32;

// A new token: kTokenBytes from the kernel's CSPRNG (getrandom), in
// unpadded base64url (43 characters). Fails only if the kernel does.
absl::StatusOr<std::string> NewToken();

}  // namespace rnnserve::sessions

#endif  // RNNSERVE_SERVER_SESSIONS_TOKEN_H_
