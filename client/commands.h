// rnnctl's subcommands. Each parses its own arguments (without the program
// and subcommand names), prints its results to stdout and returns an error
// for main to print.
#ifndef RNNSERVE_CLIENT_COMMANDS_H_
#define RNNSERVE_CLIENT_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace rnnserve::client {

// rnnctl models [NAME]: lists the models, or describes one.
absl::Status RunModels(const std::vector<std::string>& args);
// rnnctl classify: classifies Fashion-MNIST images or CSV sequences.
absl::Status RunClassify(const std::vector<std::string>& args);
// rnnctl stream: the sine-to-cosine streaming regression demo.
absl::Status RunStream(const std::vector<std::string>& args);
// rnnctl bench: a closed-loop load generator.
absl::Status RunBench(const std::vector<std::string>& args);
// rnnctl health [SERVICE]: the gRPC health service's answer.
absl::Status RunHealth(const std::vector<std::string>& args);
// rnnctl repository index | load MODEL | unload MODEL: the Repository
// service, with an admin token.
absl::Status RunRepository(const std::vector<std::string>& args);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_COMMANDS_H_
