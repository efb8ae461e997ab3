// rnnserve.v1.Repository: loads and unloads model versions while serving,
// for callers with an admin token. Offered only when admin tokens are
// configured; its tokens are not the Inference tokens.
#ifndef RNNSERVE_SERVER_SERVICE_REPOSITORY_SERVICE_H_
#define RNNSERVE_SERVER_SERVICE_REPOSITORY_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "rnnserve/v1/inference.grpc.pb.h"
#include "server/service/bearer_tokens.h"
#include "server/service/limits.h"
#include "server/service/model_repository.h"

namespace rnnserve::service {

// Fills `proto` from `status`.
void ToProto(const ModelStatus& status, v1::RepositoryModel& proto);

// Thread-safe. `repository` and `tokens` must outlive it.
class RepositoryService final : public v1::Repository::CallbackService {
 public:
  RepositoryService(ModelRepository& repository, const BearerTokens& tokens)
      : repository_(repository), tokens_(tokens) {}

  grpc::ServerUnaryReactor* RepositoryIndex(
      grpc::CallbackServerContext* context,
      const v1::RepositoryIndexRequest* request,
      v1::RepositoryIndexResponse* response) override;
  grpc::ServerUnaryReactor* LoadModel(grpc::CallbackServerContext* context,
                                      const v1::LoadModelRequest* request,
                                      v1::LoadModelResponse* response) override;
  grpc::ServerUnaryReactor* UnloadModel(
      grpc::CallbackServerContext* context,
      const v1::UnloadModelRequest* request,
      v1::UnloadModelResponse* response) override;

 private:
  ModelRepository& repository_;
  const BearerTokens& tokens_;
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_REPOSITORY_SERVICE_H_
