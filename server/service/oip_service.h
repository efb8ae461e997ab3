// The Open Inference Protocol (package inference, service
// GRPCInferenceService) on the same port as rnnserve.v1.Inference, so that
// clients written for that protocol call rnnserve unchanged.
//
// Its methods are served as generic unary calls through the same
// UnaryMethods as rnnserve.v1's (unary_call.h): the bearer token, the
// per-token quota and shutdown admission are checked before a body is read,
// and calls are counted in the same metrics, under method ModelInfer; they
// are queued and batched with the model's rnnserve.v1 calls.
//
// What the protocol's tensors and parameters mean here is in
// docs/open-inference-protocol.md (and oip_tensors.h). In short:
// - classification: INPUT FP32 [batch, steps, input_size], optional
//   LENGTHS INT32 [batch]; outputs LOGITS and PROBABILITIES FP32
//   [batch, classes];
// - regression: a session per sequence_id (request parameters sequence_id,
//   sequence_start, sequence_end), scoped to the caller's bearer token:
//   INPUT FP32 [1, steps, input_size] gives OUTPUT FP32
//   [1, steps, output_size].
#ifndef RNNSERVE_SERVER_SERVICE_OIP_SERVICE_H_
#define RNNSERVE_SERVER_SERVICE_OIP_SERVICE_H_

#include <grpcpp/generic/async_generic_service.h>

#include <string>
#include <string_view>

#include "server/service/serving_state.h"
#include "server/service/unary_call.h"

namespace rnnserve::service {

// The path prefix of the protocol's methods.
inline constexpr std::string_view kOipMethodPrefix =
    "/inference.GRPCInferenceService/";

// Thread-safe: each call is handled by one thread at a time (see UnaryCall).
//
// A new call of the protocol's `method` (the path after kOipMethodPrefix),
// not yet started, or null when there is no such method. `state` and
// `context` outlive the call, which deletes itself when done.
UnaryCall* NewOipCall(const ServingState& state,
                      grpc::GenericCallbackServerContext& context,
                      std::string_view method);

// The session token of `caller`'s sequence `sequence_id`: derived, so that
// every replica finds the same session, and scoped to the caller (the
// digest of its bearer token), so that two tokens using one id never share
// a session. The prefix keeps it apart from the random tokens of
// rnnserve.v1, which contain no ':'.
std::string OipSequenceToken(const std::string& caller,
                             const std::string& sequence_id);

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_OIP_SERVICE_H_
