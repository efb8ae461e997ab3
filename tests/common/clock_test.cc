#include "server/common/clock.h"

#include "gtest/gtest.h"

namespace rnnserve {
namespace {

TEST(ClockTest, AWallDeadlineKeepsTheTimeItLeavesOnTheMonotonicBase) {
  const absl::Time wall_now = absl::FromUnixSeconds(1'800'000'000);
  const absl::Time monotonic_now = absl::UnixEpoch() + absl::Hours(3);
  EXPECT_EQ(
      MonotonicDeadline(wall_now + absl::Seconds(5), wall_now, monotonic_now),
      monotonic_now + absl::Seconds(5));
  // Already past stays past.
  EXPECT_EQ(
      MonotonicDeadline(wall_now - absl::Seconds(1), wall_now, monotonic_now),
      monotonic_now - absl::Seconds(1));
  EXPECT_EQ(MonotonicDeadline(absl::InfiniteFuture(), wall_now, monotonic_now),
            absl::InfiniteFuture());
}

TEST(ClockTest, SteadyClockNeverGoesBack) {
  SteadyClock clock;
  absl::Time last = clock.Now();
  for (int i = 0; i < 1000; ++i) {
    const absl::Time now = clock.Now();
    EXPECT_GE(now, last);
    last = now;
  }
}

}  // namespace
}  // namespace rnnserve
