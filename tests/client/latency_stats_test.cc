#include "client/latency_stats.h"

#include "gtest/gtest.h"

namespace rnnserve::client {
namespace {

TEST(NearestRankTest, FollowsTheDefinition) {
  // ceil(p / 100 * n), at least 1.
  EXPECT_EQ(NearestRank(50, 10), 5);
  EXPECT_EQ(NearestRank(90, 10), 9);  // Not 10: 0.9 * 10 is not exact.
  EXPECT_EQ(NearestRank(99, 10), 10);
  EXPECT_EQ(NearestRank(100, 10), 10);
  EXPECT_EQ(NearestRank(0, 10), 1);
  EXPECT_EQ(NearestRank(50, 1), 1);
  EXPECT_EQ(NearestRank(99, 1000), 990);
  EXPECT_EQ(NearestRank(99.9, 1000), 999);
  EXPECT_EQ(NearestRank(50, 3), 2);
  EXPECT_EQ(NearestRank(25, 5), 2);
}

TEST(LatencySamplesTest, PercentilesAreMeasuredValues) {
  LatencySamples samples;
  // 1..100 ms, shuffled.
  for (int i = 0; i < 100; ++i) {
    samples.Add(absl::Milliseconds((i * 37) % 100 + 1));
  }
  EXPECT_EQ(samples.Percentile(50), absl::Milliseconds(50));
  EXPECT_EQ(samples.Percentile(90), absl::Milliseconds(90));
  EXPECT_EQ(samples.Percentile(99), absl::Milliseconds(99));
  EXPECT_EQ(samples.Percentile(100), absl::Milliseconds(100));
  const LatencySummary s = samples.Summarize();
  EXPECT_EQ(s.count, 100);
  EXPECT_EQ(s.min, absl::Milliseconds(1));
  EXPECT_EQ(s.max, absl::Milliseconds(100));
  EXPECT_EQ(s.mean, absl::Microseconds(50500));
}

TEST(LatencySamplesTest, MergeAndAddAfterSorting) {
  LatencySamples a, b;
  a.Add(absl::Milliseconds(3));
  a.Add(absl::Milliseconds(1));
  EXPECT_EQ(a.Percentile(100), absl::Milliseconds(3));
  b.Add(absl::Milliseconds(7));
  a.Merge(b);
  a.Add(absl::Milliseconds(2));
  EXPECT_EQ(a.count(), 4);
  EXPECT_EQ(a.Percentile(50), absl::Milliseconds(2));
  EXPECT_EQ(a.Percentile(100), absl::Milliseconds(7));
}

TEST(LatencySamplesTest, EmptyIsZero) {
  LatencySamples samples;
  EXPECT_EQ(samples.Percentile(99), absl::ZeroDuration());
  const LatencySummary s = samples.Summarize();
  EXPECT_EQ(s.count, 0);
  EXPECT_EQ(s.max, absl::ZeroDuration());
}

}  // namespace
}  // namespace rnnserve::client
