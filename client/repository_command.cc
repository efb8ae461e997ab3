// rnnctl repository index | load MODEL | unload MODEL: the server's
// Repository service, called with an admin token.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/common_flags.h"
#include "client/connection.h"
#include "client/repository_view.h"
#include "server/common/status_macros.h"

namespace rnnserve::client {
namespace {

constexpr char kAbout[] =
    "Calls the server's repository service (rnnserve.v1.Repository) with "
    "the admin token of --admin-token-file, and prints each model's "
    "versions: state, sessions of a draining version, reason of a failed "
    "or unloaded one.\n"
    "  index          every model folder and every version the server holds "
    "or tried to load\n"
    "  load MODEL     rescans MODEL's folder now: loads new and changed "
    "versions, unloads those its policy no longer selects; ends an earlier "
    "unload\n"
    "  unload MODEL   unloads every version of MODEL (a version with "
    "sessions drains first); rescans leave it unloaded until 'load MODEL'\n"
    "The server offers the service only when started with "
    "--admin-tokens-file. --auth-token-file is not sent on these calls.";

void Print(const v1::RepositoryModel& model) {
  v1::RepositoryIndexResponse one;
  *one.add_models() = model;
  std::fputs(FormatRepository(one).c_str(), stdout);
}

// After a failed LoadModel: the model as the server now holds it (its
// failed version, the versions still serving), when the index tells.
void PrintAfterFailure(const Connection& connection, const std::string& name) {
  grpc::ClientContext context;
  connection.PrepareAdmin(&context);
  v1::RepositoryIndexResponse index;
  if (!connection.repository()
           .RepositoryIndex(&context, v1::RepositoryIndexRequest(), &index)
           .ok()) {
    return;
  }
  for (const v1::RepositoryModel& model : index.models()) {
    if (model.name() == name) Print(model);
  }
}

absl::Status Run(const Connection& connection, const RepositoryAction& action,
                 const std::string& token_file) {
  grpc::ClientContext context;
  connection.PrepareAdmin(&context);
  v1::Repository::Stub& stub = connection.repository();
  switch (action.verb) {
    case RepositoryAction::Verb::kIndex: {
      v1::RepositoryIndexResponse response;
      const grpc::Status status = stub.RepositoryIndex(
          &context, v1::RepositoryIndexRequest(), &response);
      if (!status.ok()) {
        return RepositoryCallError(status, "RepositoryIndex", token_file);
      }
      std::fputs(FormatRepository(response).c_str(), stdout);
      return absl::OkStatus();
    }
    case RepositoryAction::Verb::kLoad: {
      v1::LoadModelRequest request;
      request.set_model(action.model);
      v1::LoadModelResponse response;
      const grpc::Status status = stub.LoadModel(&context, request, &response);
      if (!status.ok()) {
        const absl::Status error =
            RepositoryCallError(status, "LoadModel", token_file);
        if (status.error_code() != grpc::StatusCode::UNIMPLEMENTED &&
            status.error_code() != grpc::StatusCode::UNAUTHENTICATED) {
          PrintAfterFailure(connection, action.model);
        }
        return error;
      }
      Print(response.model());
      return absl::OkStatus();
    }
    case RepositoryAction::Verb::kUnload: {
      v1::UnloadModelRequest request;
      request.set_model(action.model);
      v1::UnloadModelResponse response;
      const grpc::Status status =
          stub.UnloadModel(&context, request, &response);
      if (!status.ok()) {
        return RepositoryCallError(status, "UnloadModel", token_file);
      }
      Print(response.model());
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown repository action");
}

}  // namespace

absl::Status RunRepository(const std::vector<std::string>& args) {
  CommonOptions common;
  FlagSet flags("rnnctl repository [flags] index | load MODEL | unload MODEL",
                kAbout);
  AddCommonFlags(flags, &common);
  flags.String("admin-token-file", &common.admin_token_file,
               "File holding an admin token (one of the server's "
               "--admin-tokens-file), sent as 'authorization: Bearer "
               "<token>'. Required.");
  ASSIGN_OR_RETURN(CommandLine line, ParseCommandLine(flags, args));
  if (line.help) return absl::OkStatus();
  ASSIGN_OR_RETURN(const RepositoryAction action,
                   ParseRepositoryAction(line.positional));
  if (common.admin_token_file.empty()) {
    return absl::InvalidArgumentError(
        "--admin-token-file: required: the repository service takes only "
        "admin tokens (the server's --admin-tokens-file)");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection,
                   Connection::Create(common));
  return Run(*connection, action, common.admin_token_file);
}

}  // namespace rnnserve::client
