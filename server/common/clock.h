// Time, injected: production code asks a Clock, tests advance a FakeClock.
//
// Two time bases: RealClock is the wall clock (it can step, e.g. when NTP
// corrects it); SteadyClock never goes back and is what deadlines, queue
// delays and latencies are measured on. Times from different bases must not
// be compared; MonotonicDeadline() carries a wall-clock deadline over.
#ifndef RNNSERVE_SERVER_COMMON_CLOCK_H_
#define RNNSERVE_SERVER_COMMON_CLOCK_H_

#include <chrono>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rnnserve {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The system's wall clock. It can jump either way: not for deadlines.
class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

// A monotonic clock: its times count from an arbitrary origin (boot, on
// Linux), so they are only good for comparing with each other, never for
// showing as dates.
class SteadyClock final : public Clock {
 public:
  absl::Time Now() const override { return MonotonicNow(); }
  static absl::Time MonotonicNow() {
    return absl::UnixEpoch() +
           absl::FromChrono(
               std::chrono::steady_clock::now().time_since_epoch());
  }
};

// A wall-clock `deadline` moved onto a monotonic base: the time it leaves
// from `wall_now`, added to `monotonic_now`. Infinite deadlines stay so.
inline absl::Time MonotonicDeadline(absl::Time deadline, absl::Time wall_now,
                                    absl::Time monotonic_now) {
  if (deadline == absl::InfiniteFuture()) return absl::InfiniteFuture();
  if (deadline == absl::InfinitePast()) return absl::InfinitePast();
  return monotonic_now + (deadline - wall_now);
}

// A clock that moves only when told to, either way. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch()) : now_(start) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  // `d` may be negative: a wall clock stepped back.
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rnnserve

#endif  // RNNSERVE_SERVER_COMMON_CLOCK_H_
