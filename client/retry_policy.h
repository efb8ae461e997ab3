// When and how rnnctl resends a streaming chunk whose call broke. A chunk
// carries the session position it is sent from (expected_first_step), so
// the server applies it at most once: resending is always safe, and the
// only question is which failures are worth a retry and how long to wait.
#ifndef RNNSERVE_CLIENT_RETRY_POLICY_H_
#define RNNSERVE_CLIENT_RETRY_POLICY_H_

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string_view>

#include "absl/time/time.h"

namespace rnnserve::client {

// Plain values; copy freely.
struct RetryPolicy {
  // Resends of one chunk after its first attempt; 0 never resends.
  int max_retries = 5;
  // The wait before the first resend; each next wait is `multiplier` times
  // longer, up to `max_backoff`.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  double multiplier = 2;
  // Each wait is shortened by up to this fraction, at random, so that
  // clients cut off together do not all come back at the same instant.
  double jitter = 0.5;
};

// The wait before resend number `retry` (1 for the first), with `unit` in
// [0, 1) the random draw: min(max_backoff, initial * multiplier^(retry-1))
// times (1 - jitter * unit). Never negative, never above max_backoff.
absl::Duration BackoffDelay(const RetryPolicy& policy, int retry, double unit);

// What a failed chunk call means for the client.
enum class ChunkFailure {
  // The call broke or the server could not answer now (it went away, is
  // draining, its session store is down, a proxy lost the replica): resend.
  kRetry,
  // Another call presented the token and holds the session now.
  kTakenOver,
  // The session is not where the client sent the chunk from.
  kPositionMismatch,
  // Anything else (a bad request, an unknown session...): resending the
  // same chunk would fail the same way.
  kFatal,
};

// Sorts a failed call by its status; `server_position` is the trailing
// "rnnserve-session-position" the server sent, if any.
ChunkFailure ClassifyChunkFailure(grpc::StatusCode code,
                                  std::string_view message,
                                  std::optional<uint64_t> server_position);

// The session position in a call's trailing metadata (the server sends it
// with FAILED_PRECONDITION when a chunk's expected_first_step is not where
// the session is); nullopt when absent or not a decimal number.
std::optional<uint64_t> ServerPosition(
    const std::multimap<grpc::string_ref, grpc::string_ref>& trailers);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_RETRY_POLICY_H_
