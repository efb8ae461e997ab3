#include "server/service/repository_service.h"

#include <string>

#include "server/service/authenticate.h"
#include "server/service/model_info.h"
#include "server/service/status.h"

namespace rnnserve::service {
namespace {

// Finishes `reactor` with `status`.
grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                 const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// The admin token check, with messages that name the admin token.
absl::Status AuthenticateAdmin(const grpc::CallbackServerContext& context,
                               const BearerTokens& tokens) {
  if (Authenticate(context, &tokens).ok()) return absl::OkStatus();
  return absl::UnauthenticatedError(
      "rnnserve.v1.Repository requires an admin token: send "
      "'authorization: Bearer <admin token>' with a token of the server's "
      "--admin-tokens-file (rnnctl: --admin-token-file)");
}

absl::Status CheckModelName(const std::string& name) {
  if (name.empty()) {
    return absl::InvalidArgumentError("model: a model name is required");
  }
  return absl::OkStatus();
}

}  // namespace

void ToProto(const ModelStatus& status, v1::RepositoryModel& proto) {
  proto.set_name(status.name);
  proto.set_unloaded_by_request(status.unloaded_by_request);
  for (const VersionInfo& v : status.versions) {
    v1::VersionStatus* version = proto.add_versions();
    version->set_version(v.version);
    version->set_state(ToProto(v.state));
    version->set_sessions(
        static_cast<uint64_t>(std::max<int64_t>(0, v.sessions)));
    version->set_reason(v.reason);
  }
  if (!status.error.empty() && status.versions.empty()) {
    v1::VersionStatus* version = proto.add_versions();
    version->set_state(v1::VERSION_STATE_FAILED);
    version->set_reason(status.error);
  }
}

grpc::ServerUnaryReactor* RepositoryService::RepositoryIndex(
    grpc::CallbackServerContext* context, const v1::RepositoryIndexRequest*,
    v1::RepositoryIndexResponse* response) {
  if (absl::Status s = AuthenticateAdmin(*context, tokens_); !s.ok()) {
    return Finish(context, s);
  }
  for (const ModelStatus& status : repository_.Index()) {
    ToProto(status, *response->add_models());
  }
  return Finish(context, absl::OkStatus());
}

// The reactor of LoadModel and UnloadModel: finished by the repository's
// thread when the change is made.
template <typename Response>
grpc::ServerUnaryReactor* Change(
    grpc::CallbackServerContext* context, const BearerTokens& tokens,
    const std::string& model, Response* response,
    void (ModelRepository::*change)(const std::string&, ModelRepository::Done),
    ModelRepository& repository) {
  absl::Status allowed = AuthenticateAdmin(*context, tokens);
  if (allowed.ok()) allowed = CheckModelName(model);
  if (!allowed.ok()) return Finish(context, allowed);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  (repository.*change)(model,
                       [reactor, response](absl::StatusOr<ModelStatus> status) {
                         if (status.ok())
                           ToProto(*status, *response->mutable_model());
                         reactor->Finish(ToGrpcStatus(status.status()));
                       });
  return reactor;
}

grpc::ServerUnaryReactor* RepositoryService::LoadModel(
    grpc::CallbackServerContext* context, const v1::LoadModelRequest* request,
    v1::LoadModelResponse* response) {
  return Change(context, tokens_, request->model(), response,
                &ModelRepository::LoadModel, repository_);
}

grpc::ServerUnaryReactor* RepositoryService::UnloadModel(
    grpc::CallbackServerContext* context, const v1::UnloadModelRequest* request,
    v1::UnloadModelResponse* response) {
  return Change(context, tokens_, request->model(), response,
                &ModelRepository::UnloadModel, repository_);
}

}  // namespace rnnserve::service
