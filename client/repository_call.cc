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

// LoadModel or UnloadModel of `model`: both answer the model after the
// call. `rpc` is the stub's method, `method` its name for errors. With
// `index_on_failure`, a call that failed on the model (not on access) shows
// the model as the index then has it.
template <typename Request, typename Response>
RepositoryOutcome CallOnModel(
    const Connection& connection, const std::string& model,
    const std::string& token_file, const char* method, bool index_on_failure,
    grpc::Status (v1::Repository::Stub::*rpc)(grpc::ClientContext*,
                                              const Request&, Response*)) {
  grpc::ClientContext context;
  connection.PrepareAdmin(&context);
  Request request;
  request.set_model(model);
  Response response;
  const grpc::Status status =
      (connection.repository().*rpc)(&context, request, &response);
  if (status.ok()) return {absl::OkStatus(), Format(response.model())};
  RepositoryOutcome failed{RepositoryCallError(status, method, token_file), ""};
  if (index_on_failure &&
      status.error_code() != grpc::StatusCode::UNIMPLEMENTED &&
      status.error_code() != grpc::StatusCode::UNAUTHENTICATED) {
    failed.text = FromIndex(connection, model);
  }
  return failed;
}

}  // namespace

RepositoryOutcome CallRepository(const Connection& connection,
                                 const RepositoryAction& action,
                                 const std::string& admin_token_file) {
  switch (action.verb) {
    case RepositoryAction::Verb::kIndex:
      return Index(connection, admin_token_file);
    case RepositoryAction::Verb::kLoad:
      // A load that failed on the model left it in a state worth seeing:
      // which version failed, which still serve.
      return CallOnModel(connection, action.model, admin_token_file,
                         "LoadModel", /*index_on_failure=*/true,
                         &v1::Repository::Stub::LoadModel);
    case RepositoryAction::Verb::kUnload:
      return CallOnModel(connection, action.model, admin_token_file,
                         "UnloadModel", /*index_on_failure=*/false,
                         &v1::Repository::Stub::UnloadModel);
  }
  return {absl::InternalError("unknown repository action"), ""};
}

}  // namespace rnnserve::client
