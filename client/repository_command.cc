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
#include "client/repository_call.h"
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
  const RepositoryOutcome outcome =
      CallRepository(*connection, action, common.admin_token_file);
  std::fputs(outcome.text.c_str(), stdout);
  return outcome.status;
}

}  // namespace rnnserve::client
