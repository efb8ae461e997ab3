// Small pieces every handler uses.
#ifndef RNNSERVE_SERVER_SERVICE_CALL_UTIL_H_
#define RNNSERVE_SERVER_SERVICE_CALL_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/time/time.h"

namespace rnnserve::service {

// The call's deadline, or InfiniteFuture when it has none.
inline absl::Time Deadline(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline >= std::chrono::system_clock::time_point::max() -
                      std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_CALL_UTIL_H_
