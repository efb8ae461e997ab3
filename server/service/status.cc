#include "server/service/status.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "server/sessions/session_store.h"

namespace rnnserve::service {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

void AddTrailingDetails(const absl::Status& status,
                        grpc::ServerContextBase& context) {
  if (std::optional<uint64_t> position = sessions::PositionOf(status)) {
    context.AddTrailingMetadata(sessions::kPositionPayload,
                                absl::StrCat(*position));
  }
}

}  // namespace rnnserve::service
