// The modes of `rnnctl bench`, parsed once from --mode into an enum so that
// the command dispatches on it rather than on strings. Plain data and pure
// functions: safe from any thread.
#ifndef RNNSERVE_CLIENT_BENCH_MODE_H_
#define RNNSERVE_CLIENT_BENCH_MODE_H_

#include <string_view>

#include "absl/status/statusor.h"

namespace rnnserve::client {

enum class BenchMode {
  kClassify,  // Classify requests of --batch sequences.
  kStream,    // One Regress stream per worker, chunk after chunk.
  kHealth,    // grpc.health.v1.Health/Check: the cost of a bare RPC.
};

// The mode named `name` ("classify", "stream" or "health"); otherwise
// InvalidArgument naming --mode, the accepted values and what was given.
absl::StatusOr<BenchMode> ParseBenchMode(std::string_view name);

// The mode's --mode spelling.
std::string_view BenchModeName(BenchMode mode);

// The model a mode calls when --model is empty; empty for health.
std::string_view BenchDefaultModel(BenchMode mode);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_BENCH_MODE_H_
