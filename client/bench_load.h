// The engine of `rnnctl bench`: a closed-loop load generator. A fixed number
// of workers each keep one operation in flight (a unary call, or a chunk on
// a stream) and start the next as soon as the previous one finishes. Workers
// run on gRPC's callback threads: no thread per worker, so thousands work.
#ifndef RNNSERVE_CLIENT_BENCH_LOAD_H_
#define RNNSERVE_CLIENT_BENCH_LOAD_H_

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "absl/time/time.h"
#include "client/connection.h"
#include "client/latency_stats.h"

namespace rnnserve::client {

using BenchClock = std::chrono::steady_clock;

struct LoadPlan {
  int workers = 16;
  absl::Duration warmup = absl::Seconds(1);  // Not measured.
  absl::Duration duration = absl::Seconds(10);
  // When > 0, the run measures this many operations instead of a duration.
  int64_t operations = 0;
};

// What was measured: operations that began after the warm-up and ended
// within the measured window.
struct LoadResult {
  int64_t operations = 0;
  int64_t units = 0;              // Sequences or steps in those operations.
  absl::Duration wall;            // The measured window.
  std::map<int, int64_t> errors;  // By gRPC status code, after the warm-up.
  int64_t warmup_errors = 0;
  LatencySummary latency;
};

// The clock and the books of one run. Thread-safe. Each worker has an index
// in [0, plan.workers); the operations of one worker must not overlap, which
// lets each keep its latency samples without a lock.
class LoadControl {
 public:
  explicit LoadControl(const LoadPlan& plan);

  // Starts the clock: the warm-up begins now.
  void Begin();
  // True once the workers should stop starting operations.
  bool ShouldStop() const { return stop_.load(std::memory_order_acquire); }
  // Asks the workers to stop; ends the measured window now if it is still
  // open (the duration ends it by itself).
  void Stop();
  // When the measured window of a duration-limited run closes.
  BenchClock::time_point measure_end() const { return measure_end_; }
  bool warming_up(BenchClock::time_point now) const {
    return now < measure_start_;
  }

  // An operation of `worker` that began at `start` succeeded now.
  void RecordSuccess(int worker, BenchClock::time_point start, int64_t units);
  // An operation (or a stream) failed now with status `code`.
  void RecordError(int code);

  // Worker lifetime, so that Finish can wait for the last callback.
  void WorkerStarted();
  // Must be a worker's very last use of this object.
  void WorkerFinished();

  // Counts since Begin, warm-up included, for the progress line.
  int64_t total_operations() const { return total_.load(); }
  int64_t total_errors() const { return total_errors_.load(); }
  int64_t measured_operations() const { return measured_.load(); }

  // Waits for every worker to finish, then sums the books.
  LoadResult Finish();

 private:
  struct Book {
    int64_t operations = 0;
    int64_t units = 0;
    LatencySamples latencies;
  };

  const LoadPlan plan_;
  BenchClock::time_point begin_, measure_start_, measure_end_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> total_{0};
  std::atomic<int64_t> total_errors_{0};
  std::atomic<int64_t> tickets_{0};  // Operations claimed to be measured.
  std::atomic<int64_t> measured_{0};
  std::array<std::atomic<int64_t>, 17> errors_{};
  std::atomic<int64_t> warmup_errors_{0};
  std::vector<Book> books_;  // One per worker, touched by that worker only.

  std::mutex mu_;
  std::condition_variable finished_;
  int live_workers_ = 0;               // Guarded by mu_.
  BenchClock::time_point stopped_at_;  // Guarded by mu_.
  bool stopped_ = false;               // Guarded by mu_.
};

// Starts one unary call into `context` (already prepared), answering `done`.
using UnaryCallStarter = std::function<void(
    grpc::ClientContext* context, std::function<void(grpc::Status)> done)>;

// Starts a worker that runs `start` in a closed loop until control.Stop(),
// each call counting `units` units of work. `start` must keep its own
// response storage, one per worker.
void StartUnaryWorker(LoadControl& control, int worker,
                      const Connection& connection, UnaryCallStarter start,
                      int64_t units);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_BENCH_LOAD_H_
