// The messages both session stores answer a full store with, so that a
// client reads the same words from either.
#ifndef RNNSERVE_SERVER_SESSIONS_LIMITS_MESSAGES_H_
#define RNNSERVE_SERVER_SESSIONS_LIMITS_MESSAGES_H_

#include <cstdint>

#include "absl/status/status.h"

namespace rnnserve::sessions {

// RESOURCE_EXHAUSTED: the store holds max_sessions (`shared`: the bound of
// a store every replica shares).
absl::Status StoreFull(int64_t max_sessions, bool shared);
// RESOURCE_EXHAUSTED: the caller's bearer token holds its quota.
absl::Status QuotaFull(int64_t max_sessions_per_owner);

}  // namespace rnnserve::sessions

#endif  // RNNSERVE_SERVER_SESSIONS_LIMITS_MESSAGES_H_
