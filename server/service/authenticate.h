// The bearer-token check every rnnserve.v1.Inference handler runs first.
#ifndef RNNSERVE_SERVER_SERVICE_AUTHENTICATE_H_
#define RNNSERVE_SERVER_SERVICE_AUTHENTICATE_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "server/service/bearer_tokens.h"

namespace rnnserve::service {

// OK when `tokens` is null (authentication is off) or when the call carries
// exactly one `authorization: Bearer <token>` header with one of `tokens`;
// UNAUTHENTICATED otherwise, with a message that never echoes the header.
absl::Status Authenticate(const grpc::CallbackServerContext& context,
                          const BearerTokens* tokens);

// The identity of an authenticated caller, for its quotas and the sessions
// it owns: the digest of its bearer token (BearerTokens::CallerId), never
// the token. Empty when `tokens` is null: without authentication no caller
// is told from another.
std::string CallerId(const grpc::CallbackServerContext& context,
                     const BearerTokens* tokens);

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_AUTHENTICATE_H_
