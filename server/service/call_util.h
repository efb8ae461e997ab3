// Small pieces every handler uses.
#ifndef RNNSERVE_SERVER_SERVICE_CALL_UTIL_H_
#define RNNSERVE_SERVER_SERVICE_CALL_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/common/clock.h"

namespace rnnserve::service {

// The call's deadline on SteadyClock's base (the scheduler's clock), or
// InfiniteFuture when it has none. gRPC gives it on the wall clock; what is
// kept is the time left now, so a later step of the wall clock neither
// expires a queued call early nor keeps it past its caller's wait.
inline absl::Time Deadline(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline >= std::chrono::system_clock::time_point::max() -
                      std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return MonotonicDeadline(absl::FromChrono(deadline), absl::Now(),
                           SteadyClock::MonotonicNow());
}

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_CALL_UTIL_H_
