#include "server/service/authenticate.h"

#include <iterator>
#include <string_view>

namespace rnnserve::service {

absl::Status Authenticate(const grpc::CallbackServerContext& context,
                          const BearerTokens* tokens) {
  if (tokens == nullptr) return absl::OkStatus();
  const auto& metadata = context.client_metadata();
  const auto [first, last] = metadata.equal_range("authorization");
  if (first == last) {
    return absl::UnauthenticatedError(
        "this server requires a bearer token: send the metadata "
        "'authorization: Bearer <token>' (rnnctl: --auth-token-file)");
  }
  // Two headers could mean two different things to two different readers.
  if (std::next(first) != last ||
      !tokens->Accepts(
          std::string_view(first->second.data(), first->second.size()))) {
    return absl::UnauthenticatedError(
        "the bearer token in 'authorization' is not valid for this server");
  }
  return absl::OkStatus();
}

std::string CallerId(const grpc::CallbackServerContext& context,
                     const BearerTokens* tokens) {
  if (tokens == nullptr) return "";
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return "";
  return BearerTokens::CallerId(
      std::string_view(it->second.data(), it->second.size()));
}

absl::StatusOr<AdmittedCaller> AdmitCaller(
    const ServingState& state, const grpc::CallbackServerContext& context,
    const char* rpc) {
  if (absl::Status status = Authenticate(context, state.bearer_tokens);
      !status.ok()) {
    if (state.metrics != nullptr) state.metrics->AuthRefused(rpc);
    return status;
  }
  AdmittedCaller admitted;
  admitted.caller = CallerId(context, state.bearer_tokens);
  absl::StatusOr<CallSlot> slot = state.AdmitCall(admitted.caller);
  if (!slot.ok()) return slot.status();
  admitted.slot = *std::move(slot);
  return admitted;
}

}  // namespace rnnserve::service
