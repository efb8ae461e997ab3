// rnnctl: the command-line client of rnnserve. main only picks the
// subcommand; each subcommand parses its own flags.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/commands.h"

namespace {

constexpr char kUsage[] =
    "Usage: rnnctl <command> [flags]\n"
    "\n"
    "The command-line client of rnnserve, the recurrent network inference\n"
    "server.\n"
    "\n"
    "Commands:\n"
    "  models [NAME]  lists the loaded models, or describes one\n"
    "  classify       classifies Fashion-MNIST images or CSV sequences\n"
    "  stream         streams sin(t) through a regression model, chunk by\n"
    "                 chunk, and compares the predictions with cos(t)\n"
    "  bench          closed-loop load generator: throughput and latency\n"
    "  health [NAME]  the gRPC health status; exits 0 only when SERVING\n"
    "  repository     index | load MODEL | unload MODEL: the model versions\n"
    "                 the server holds, loads or unloads (admin token)\n"
    "\n"
    "Run 'rnnctl <command> --help' for a command's flags.\n";

struct Command {
  const char* name;
  absl::Status (*run)(const std::vector<std::string>&);
};

constexpr Command kCommands[] = {
    {"models", rnnserve::client::RunModels},
    {"classify", rnnserve::client::RunClassify},
    {"stream", rnnserve::client::RunStream},
    {"bench", rnnserve::client::RunBench},
    {"health", rnnserve::client::RunHealth},
    {"repository", rnnserve::client::RunRepository},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "help" || name == "--help" || name == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("rnnctl %s (commit %s)\n", RNNSERVE_VERSION,
                RNNSERVE_GIT_COMMIT);
    return 0;
  }
  for (const Command& command : kCommands) {
    if (name != command.name) continue;
    const absl::Status status =
        command.run(std::vector<std::string>(argv + 2, argv + argc));
    if (status.ok()) return 0;
    std::fprintf(stderr, "rnnctl %s: %s (%d): %s\n", command.name,
                 absl::StatusCodeToString(status.code()).c_str(),
                 static_cast<int>(status.code()),
                 std::string(status.message()).c_str());
    return 1;
  }
  std::fprintf(stderr, "rnnctl: unknown command \"%s\"\n\n%s", name.c_str(),
               kUsage);
  return 2;
}
