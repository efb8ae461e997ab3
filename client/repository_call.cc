#include "client/repository_call.h"

namespace rnnserve::client {
namespace {

std::string Format(const v1::RepositoryModel& model) {
  v1::RepositoryIndexResponse one;
  *one.add_models() = model;
  return FormatRepository(one);
}

// The model as the index shows it; empty if the index does not answer.
std::string FromIndex(const Connection& connection, const std::string& name) {
  grpc::ClientContext context;
  connection.PrepareAdmin(&context);
  v1::RepositoryIndexResponse index;
  if (!connection.repository()
           .RepositoryIndex(&context, v1::RepositoryIndexRequest(), &index)
           .ok()) {
    return "";
  }
  for (const v1::RepositoryModel& model : index.models()) {
    if (model.name() == name) return Format(model);
  }
  return "";
}

RepositoryOutcome Index(const Connection& connection,
                        const std::string& token_file) {
  grpc::ClientContext context;
  connection.PrepareAdmin(&context);
  v1::RepositoryIndexResponse response;
  const grpc::Status status = connection.repository().RepositoryIndex(
      &context, v1::RepositoryIndexRequest(), &response);
  if (!status.ok()) {
    return {RepositoryCallError(status, "RepositoryIndex", token_file), ""};
  }
  return {absl::OkStatus(), FormatRepository(response)};
}

RepositoryOutcome Load(const Connection& connection, const std::string& model,
                       const std::string& token_file) {
  grpc::ClientContext context;
  connection.PrepareAdmin(&context);
  v1::LoadModelRequest request;
  request.set_model(model);
  v1::LoadModelResponse response;
  const grpc::Status status =
      connection.repository().LoadModel(&context, request, &response);
  if (status.ok()) return {absl::OkStatus(), Format(response.model())};
  RepositoryOutcome failed{RepositoryCallError(status, "LoadModel", token_file),
                           ""};
  // A load that failed on the model (not on access) left it in a state
  // worth seeing: which version failed, which still serve.
  if (status.error_code() != grpc::StatusCode::UNIMPLEMENTED &&
      status.error_code() != grpc::StatusCode::UNAUTHENTICATED) {
    failed.text = FromIndex(connection, model);
  }
  return failed;
}

RepositoryOutcome Unload(const Connection& connection, const std::string& model,
                         const std::string& token_file) {
  grpc::ClientContext context;
  connection.PrepareAdmin(&context);
  v1::UnloadModelRequest request;
  request.set_model(model);
  v1::UnloadModelResponse response;
  const grpc::Status status =
      connection.repository().UnloadModel(&context, request, &response);
  if (!status.ok()) {
    return {RepositoryCallError(status, "UnloadModel", token_file), ""};
  }
  return {absl::OkStatus(), Format(response.model())};
}

}  // namespace

RepositoryOutcome CallRepository(const Connection& connection,
                                 const RepositoryAction& action,
                                 const std::string& admin_token_file) {
  switch (action.verb) {
    case RepositoryAction::Verb::kIndex:
      return Index(connection, admin_token_file);
    case RepositoryAction::Verb::kLoad:
      return Load(connection, action.model, admin_token_file);
    case RepositoryAction::Verb::kUnload:
      return Unload(connection, action.model, admin_token_file);
  }
  return {absl::InternalError("unknown repository action"), ""};
}

}  // namespace rnnserve::client
