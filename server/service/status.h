// The one place where absl::Status becomes grpc::Status.
#ifndef RNNSERVE_SERVER_SERVICE_STATUS_H_
#define RNNSERVE_SERVER_SERVICE_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace rnnserve::service {

// Same code (the two share numbering), same message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_STATUS_H_
