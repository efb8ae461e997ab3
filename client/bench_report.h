// The final summary of `rnnctl bench`, as text for people or as one JSON
// object for scripts.
#ifndef RNNSERVE_CLIENT_BENCH_REPORT_H_
#define RNNSERVE_CLIENT_BENCH_REPORT_H_

#include <string>

#include "client/bench_load.h"

namespace rnnserve::client {

struct BenchDescription {
  std::string mode;          // "classify", "stream" or "health".
  std::string model;         // Empty for health.
  std::string operation;     // "requests" or "chunks".
  std::string unit;          // "sequences", "steps", or empty.
  int64_t units_per_op = 0;  // Batch or chunk size; 0 without units.
  std::string input;         // How the inputs were made.
  int concurrency = 0;
  int channels = 0;
  absl::Duration warmup;
};

std::string BenchText(const BenchDescription& description,
                      const LoadResult& result);
// One line of JSON; durations in seconds, latencies in milliseconds.
std::string BenchJson(const BenchDescription& description,
                      const LoadResult& result);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_BENCH_REPORT_H_
