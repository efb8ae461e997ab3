// Sends many Classify requests over one channel with a fixed number in
// flight, on gRPC's callback API: no thread per request.
#ifndef RNNSERVE_CLIENT_CLASSIFY_RUNNER_H_
#define RNNSERVE_CLIENT_CLASSIFY_RUNNER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/connection.h"
#include "client/latency_stats.h"
#include "rnnserve/v1/inference.pb.h"

namespace rnnserve::client {

struct ClassifyRunResult {
  // One response per request, in request order; each has one result per
  // request sequence (checked).
  std::vector<v1::ClassifyResponse> responses;
  absl::Duration wall;       // From the first send to the last answer.
  LatencySamples latencies;  // One per request.
};

// Sends every request, keeping up to `concurrency` in flight, and waits for
// all answers. Stops sending at the first failed call and returns its status
// (the calls already in flight are waited for, not cancelled).
absl::StatusOr<ClassifyRunResult> RunClassifyRequests(
    const Connection& connection,
    const std::vector<v1::ClassifyRequest>& requests, int concurrency);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_CLASSIFY_RUNNER_H_
