// The bearer-token check every rnnserve.v1.Inference handler runs first.
#ifndef RNNSERVE_SERVER_SERVICE_AUTHENTICATE_H_
#define RNNSERVE_SERVER_SERVICE_AUTHENTICATE_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/service/bearer_tokens.h"
#include "server/service/call_limiter.h"
#include "server/service/serving_state.h"

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

// A caller let in: who it is, and its place in its quota of calls in
// flight (given back when the slot goes).
struct AdmittedCaller {
  std::string caller;
  CallSlot slot;
};

// What every Inference call runs before it reads anything: the bearer
// token (a refusal is counted under `rpc`), then a slot in the caller's
// quota (RESOURCE_EXHAUSTED, naming the flag, when it is full).
absl::StatusOr<AdmittedCaller> AdmitCaller(
    const ServingState& state, const grpc::CallbackServerContext& context,
    const char* rpc);

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_AUTHENTICATE_H_
