#include "client/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"

namespace rnnserve::client {
namespace {

constexpr char kPositionTrailer[] = "rnnserve-session-position";

std::string Lower(std::string_view text) {
  return absl::AsciiStrToLower(std::string(text));
}

// Words of gRPC's own errors for a stream cut by the transport (a proxy
// that lost its upstream resets the stream; a closed socket ends it), as
// opposed to INTERNAL or UNKNOWN answered by a server.
bool LooksLikeBrokenTransport(std::string_view message) {
  const std::string lower = Lower(message);
  for (const char* hint :
       {"rst_stream", "stream removed", "socket closed", "connection reset",
        "broken pipe", "goaway", "received http2 header"}) {
    if (lower.find(hint) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

absl::Duration BackoffDelay(const RetryPolicy& policy, int retry, double unit) {
  const double initial = absl::ToDoubleSeconds(policy.initial_backoff);
  const double most = absl::ToDoubleSeconds(policy.max_backoff);
  // Capped before it can overflow: the exponent stops mattering at `most`.
  double base = initial;
  for (int i = 1; i < retry && base < most; ++i) base *= policy.multiplier;
  base = std::clamp(base, 0.0, std::max(most, 0.0));
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  const double draw = std::clamp(unit, 0.0, 1.0);
  return absl::Seconds(base * (1 - jitter * draw));
}

ChunkFailure ClassifyChunkFailure(grpc::StatusCode code,
                                  std::string_view message,
                                  std::optional<uint64_t> server_position) {
  switch (code) {
    case grpc::StatusCode::ABORTED:
      return Lower(message).find("taken over") != std::string::npos
                 ? ChunkFailure::kTakenOver
                 : ChunkFailure::kRetry;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return server_position.has_value() ? ChunkFailure::kPositionMismatch
                                         : ChunkFailure::kFatal;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    // rnnctl never cancels a chunk's call itself: a cancel comes from a
    // server or proxy that gave up on it.
    case grpc::StatusCode::CANCELLED:
      return ChunkFailure::kRetry;
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN:
      return LooksLikeBrokenTransport(message) ? ChunkFailure::kRetry
                                               : ChunkFailure::kFatal;
    default:
      return ChunkFailure::kFatal;
  }
}

std::optional<uint64_t> ServerPosition(
    const std::multimap<grpc::string_ref, grpc::string_ref>& trailers) {
  auto it = trailers.find(kPositionTrailer);
  if (it == trailers.end()) return std::nullopt;
  uint64_t position = 0;
  if (!absl::SimpleAtoi(std::string(it->second.data(), it->second.size()),
                        &position)) {
    return std::nullopt;
  }
  return position;
}

}  // namespace rnnserve::client
