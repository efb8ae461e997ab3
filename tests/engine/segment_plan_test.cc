// The cut of a call's items into segments, checked against its contract:
// every item runs each of its steps exactly once, in order, from the state of
// its previous segment; only padded plans end a segment past an item's end;
// mixed lengths take a handful of segments, not one per length.
#include "server/engine/segment_plan.h"

#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace rnnserve::engine {
namespace {

struct Planned {
  std::vector<int> order;
  std::vector<Segment> segments;
};

Planned Chained(const std::vector<int>& steps, int max_batch, bool pad,
                int max_steps = 1 << 30) {
  Planned p;
  SegmentScratch scratch;
  PlanChained(steps, max_batch, max_steps, pad, scratch, p.order, p.segments);
  return p;
}

// Each item's segments start at 0, follow each other without gap or overlap
// and cover its steps; returns the padded item-steps.
long CheckCoverage(const std::vector<int>& steps, const Planned& p,
                   int max_batch, bool pad) {
  EXPECT_EQ(p.order.size(), steps.size());
  std::vector<int> done(steps.size(), 0);
  long padding = 0;
  for (const Segment& s : p.segments) {
    EXPECT_LT(s.begin, s.end);
    EXPECT_LE(s.end - s.begin, max_batch);
    EXPECT_GT(s.steps, 0);
    for (int q = s.begin; q < s.end; ++q) {
      const int item = p.order[q];
      EXPECT_EQ(done[item], s.start) << "item " << item;
      EXPECT_LT(s.start, steps[item]) << "item " << item << " already ended";
      const int end = s.start + s.steps;
      if (!pad) {
        EXPECT_LE(end, steps[item]) << "item " << item << " padded";
      }
      padding += std::max(0, end - steps[item]);
      done[item] = std::min(end, steps[item]);
    }
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(done[i], steps[i]) << "item " << i;
  }
  return padding;
}

std::vector<int> ScrambledOneTo28(int n) {
  std::vector<int> steps(n);
  for (int i = 0; i < n; ++i) steps[i] = 1 + (i * 11) % 28;
  return steps;
}

TEST(SegmentPlanTest, MixedLengthsRunInAFewPaddedSegments) {
  const std::vector<int> steps = ScrambledOneTo28(64);
  const Planned p = Chained(steps, 1024, /*pad=*/true);
  const long padding = CheckCoverage(steps, p, 1024, true);
  EXPECT_LE(p.segments.size(), 6u);
  long work = 0;
  for (int s : steps) work += s;
  EXPECT_LE(padding, work / 5) << "more than 20 % padding";
}

TEST(SegmentPlanTest, WithoutPaddingEverySegmentEndsAtAnItemsEnd) {
  const std::vector<int> steps = ScrambledOneTo28(64);
  const Planned p = Chained(steps, 1024, /*pad=*/false);
  CheckCoverage(steps, p, 1024, false);
  EXPECT_EQ(p.segments.size(), 28u);
}

TEST(SegmentPlanTest, AWideSpreadIsNotPaddedToTheLongest) {
  std::vector<int> steps(64, 1);
  steps[17] = 1000;
  const Planned p = Chained(steps, 1024, /*pad=*/true);
  EXPECT_EQ(CheckCoverage(steps, p, 1024, true), 0);
  ASSERT_EQ(p.segments.size(), 2u);
  EXPECT_EQ(p.segments[1].end - p.segments[1].begin, 1);
}

TEST(SegmentPlanTest, RandomCallsAreCoveredInBlocksOfMaxBatch) {
  std::mt19937 rng(5);
  for (int round = 0; round < 50; ++round) {
    std::vector<int> steps(1 + rng() % 100);
    for (int& s : steps) s = 1 + rng() % (round % 2 == 0 ? 10 : 1000);
    const int max_batch = 1 + rng() % 40;
    for (bool pad : {false, true}) {
      const Planned p = Chained(steps, max_batch, pad, 1 + rng() % 300);
      CheckCoverage(steps, p, max_batch, pad);
    }
  }
}

TEST(SegmentPlanTest, LongSegmentsAreCutAndFinishedItemsDropOut) {
  const std::vector<int> steps = {1000, 3, 150, 1000, 70};
  for (bool pad : {false, true}) {
    const Planned p = Chained(steps, 1024, pad, /*max_steps=*/64);
    CheckCoverage(steps, p, 1024, pad);
    for (const Segment& s : p.segments) EXPECT_LE(s.steps, 64);
    // The last pieces run only the two sequences of 1000 steps.
    EXPECT_EQ(p.segments.back().end - p.segments.back().begin, 2);
  }
}

TEST(SegmentPlanTest, ByLengthRunsEachLengthWholeFromTheStart) {
  const std::vector<int> steps = {3, 5, 3, 1, 5, 5};
  Planned p;
  PlanByLength(steps, 2, p.order, p.segments);
  CheckCoverage(steps, p, 2, false);
  std::set<int> lengths;
  for (const Segment& s : p.segments) {
    EXPECT_EQ(s.start, 0);
    lengths.insert(s.steps);
  }
  EXPECT_EQ(lengths, (std::set<int>{1, 3, 5}));
  EXPECT_EQ(p.segments.size(), 4u);  // The three of length 5 in two.
}

TEST(SegmentPlanTest, BucketsRoundAsDocumented) {
  const uint64_t buckets = kPowerOfTwoSteps | StepBucketBit(28);
  EXPECT_EQ(StepBucketAtMost(buckets, 1), 1);
  EXPECT_EQ(StepBucketAtMost(buckets, 27), 16);
  EXPECT_EQ(StepBucketAtMost(buckets, 30), 28);
  EXPECT_EQ(StepBucketAtMost(buckets, 1000), 64);
  EXPECT_EQ(StepBucketAtLeast(buckets, 17), 28);
  EXPECT_EQ(StepBucketAtLeast(buckets, 29), 32);
  EXPECT_EQ(StepBucketAtLeast(buckets, 64), 64);
  const std::vector<int> want = {1, 2, 4, 4, 8, 8, 8, 8, 16, 16, 24, 64, 128};
  const std::vector<int> n = {1, 2, 3, 4, 5, 7, 8, 8, 9, 16, 17, 60, 65};
  for (size_t i = 0; i < n.size(); ++i) {
    EXPECT_EQ(BatchBucket(n[i]), want[i]) << n[i];
  }
}

// Every segment's steps are a bucket.
void ExpectBucketed(const Planned& p, uint64_t buckets) {
  for (const Segment& s : p.segments) {
    ASSERT_TRUE(s.steps >= 1 && s.steps <= 64) << s.steps;
    EXPECT_NE(buckets & StepBucketBit(s.steps), 0u) << s.steps;
  }
}

TEST(SegmentPlanTest, BucketedPlansCoverRandomCallsInBucketLengths) {
  const uint64_t buckets = kPowerOfTwoSteps | StepBucketBit(10);
  std::mt19937 rng(3);
  for (int call = 0; call < 50; ++call) {
    std::vector<int> steps(1 + rng() % 100);
    for (int& s : steps) s = 1 + rng() % 300;
    Planned padded;
    SegmentScratch scratch;
    PlanBucketed(steps, 64, buckets, scratch, padded.order, padded.segments);
    CheckCoverage(steps, padded, 64, true);
    ExpectBucketed(padded, buckets);
    // Exact: every item ends where a segment ends.
    Planned exact = Chained(steps, 64, /*pad=*/false, 64);
    std::vector<Segment> fitted;
    FitStepBuckets(steps, exact.order, buckets, exact.segments, fitted);
    CheckCoverage(steps, exact, 64, false);
    ExpectBucketed(exact, buckets);
  }
}

TEST(SegmentPlanTest, ABucketLengthRunsInOneSegment) {
  const std::vector<int> steps(64, 28);
  Planned p;
  SegmentScratch scratch;
  PlanBucketed(steps, 1024, kPowerOfTwoSteps | StepBucketBit(28), scratch,
               p.order, p.segments);
  ASSERT_EQ(p.segments.size(), 1u);
  EXPECT_EQ(p.segments[0].steps, 28);
}

}  // namespace
}  // namespace rnnserve::engine
