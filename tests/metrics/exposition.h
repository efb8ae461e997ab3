// A small reader of the Prometheus text exposition format (0.0.4), for tests
// that check what /metrics says rather than how the server stores it.
#ifndef RNNSERVE_TESTS_METRICS_EXPOSITION_H_
#define RNNSERVE_TESTS_METRICS_EXPOSITION_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace rnnserve::metrics::testing {

using Labels = std::map<std::string, std::string>;

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct Exposition {
  std::vector<Sample> samples;
  std::map<std::string, std::string> types;  // Family name -> TYPE.
  std::map<std::string, std::string> helps;  // Family name -> HELP.

  // The value of the sample `name` with exactly `labels`; empty if absent.
  std::optional<double> Value(const std::string& name,
                              const Labels& labels = {}) const;
  // The cumulative buckets of histogram `name` with `labels` (le aside), as
  // (upper bound, count), by upper bound.
  std::vector<std::pair<double, double>> Buckets(const std::string& name,
                                                 const Labels& labels) const;
  // The count in the bucket of `name` whose bound is `le`; empty if none.
  std::optional<double> Bucket(const std::string& name, const Labels& labels,
                               double le) const;
};

// Parses `text`; a line that is neither a comment, blank, nor a well-formed
// sample is an error naming the line.
absl::StatusOr<Exposition> ParseExposition(const std::string& text);

}  // namespace rnnserve::metrics::testing

#endif  // RNNSERVE_TESTS_METRICS_EXPOSITION_H_
