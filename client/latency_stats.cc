#include "client/latency_stats.h"

#include <algorithm>
#include <cmath>

namespace rnnserve::client {

int64_t NearestRank(double p, int64_t n) {
  // p * n / 100 rather than p / 100 * n: 90 / 100 * 10 is 9.000000000000002
  // in binary floating point, whose ceiling would be one rank too high. The
  // tolerance absorbs what rounding remains for non-integral p.
  const double exact = p * static_cast<double>(n) / 100.0;
  const int64_t rank = static_cast<int64_t>(std::ceil(exact - 1e-9));
  return std::clamp<int64_t>(rank, 1, n);
}

void LatencySamples::Add(absl::Duration latency) {
  nanos_.push_back(absl::ToInt64Nanoseconds(latency));
  sorted_ = false;
}

void LatencySamples::Merge(const LatencySamples& other) {
  nanos_.insert(nanos_.end(), other.nanos_.begin(), other.nanos_.end());
  sorted_ = false;
}

absl::Duration LatencySamples::Percentile(double p) {
  if (nanos_.empty()) return absl::ZeroDuration();
  if (!sorted_) {
    std::sort(nanos_.begin(), nanos_.end());
    sorted_ = true;
  }
  return absl::Nanoseconds(nanos_[NearestRank(p, count()) - 1]);
}

LatencySummary LatencySamples::Summarize() {
  LatencySummary summary;
  summary.count = count();
  if (nanos_.empty()) return summary;
  summary.min = Percentile(0);
  summary.p50 = Percentile(50);
  summary.p90 = Percentile(90);
  summary.p99 = Percentile(99);
  summary.max = Percentile(100);
  long double total = 0;
  for (int64_t n : nanos_) total += n;
  summary.mean = absl::Nanoseconds(static_cast<int64_t>(total / count()));
  return summary;
}

}  // namespace rnnserve::client
