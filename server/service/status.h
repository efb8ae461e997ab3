// The one place where absl::Status becomes grpc::Status.
#ifndef RNNSERVE_SERVER_SERVICE_STATUS_H_
#define RNNSERVE_SERVER_SERVICE_STATUS_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace rnnserve::service {

// Same code (the two share numbering), same message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Adds what `status` carries for machines to the call's trailing metadata:
// a session's position (sessions::kPositionPayload) as
// "rnnserve-session-position". Call before the call finishes.
void AddTrailingDetails(const absl::Status& status,
                        grpc::ServerContextBase& context);

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_STATUS_H_
