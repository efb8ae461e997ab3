// Latency samples and exact percentiles over them, by the nearest-rank
// method: the p-th percentile is the smallest sample that at least p percent
// of the samples do not exceed. No buckets, no interpolation: every reported
// number is a latency that was actually measured.
#ifndef RNNSERVE_CLIENT_LATENCY_STATS_H_
#define RNNSERVE_CLIENT_LATENCY_STATS_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"

namespace rnnserve::client {

// A summary of a set of samples; all zero when there are none.
struct LatencySummary {
  int64_t count = 0;
  absl::Duration min;
  absl::Duration mean;
  absl::Duration p50;
  absl::Duration p90;
  absl::Duration p99;
  absl::Duration max;
};

// Not thread-safe: give each thread its own and Merge them at the end.
class LatencySamples {
 public:
  void Add(absl::Duration latency);
  void Merge(const LatencySamples& other);
  int64_t count() const { return static_cast<int64_t>(nanos_.size()); }

  // The nearest-rank p-th percentile, p in [0, 100] (0 gives the minimum).
  // Zero when there are no samples. Sorts the samples on first use after an
  // Add or Merge.
  absl::Duration Percentile(double p);

  LatencySummary Summarize();

 private:
  std::vector<int64_t> nanos_;
  bool sorted_ = true;
};

// The 1-based rank the nearest-rank method picks among n sorted samples for
// percentile p: ceil(p / 100 * n), at least 1. Exposed for tests.
int64_t NearestRank(double p, int64_t n);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_LATENCY_STATS_H_
