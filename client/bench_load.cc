#include "client/bench_load.h"

#include <memory>

namespace rnnserve::client {

LoadControl::LoadControl(const LoadPlan& plan)
    : plan_(plan), books_(plan.workers) {}

void LoadControl::Begin() {
  begin_ = BenchClock::now();
  measure_start_ = begin_ + absl::ToChronoNanoseconds(plan_.warmup);
  measure_end_ =
      plan_.operations > 0
          ? BenchClock::time_point::max()
          : measure_start_ + absl::ToChronoNanoseconds(plan_.duration);
}

void LoadControl::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopped_) {
      stopped_ = true;
      stopped_at_ = BenchClock::now();
    }
  }
  stop_.store(true, std::memory_order_release);
}

void LoadControl::RecordSuccess(int worker, BenchClock::time_point start,
                                int64_t units) {
  const BenchClock::time_point end = BenchClock::now();
  total_.fetch_add(1, std::memory_order_relaxed);
  if (start < measure_start_ || end > measure_end_) return;
  if (plan_.operations > 0) {
    const int64_t ticket = tickets_.fetch_add(1);
    if (ticket >= plan_.operations) return;
    if (ticket == plan_.operations - 1) Stop();
  }
  measured_.fetch_add(1, std::memory_order_relaxed);
  Book& book = books_[worker];
  ++book.operations;
  book.units += units;
  book.latencies.Add(absl::FromChrono(end - start));
}

void LoadControl::RecordError(int code) {
  total_errors_.fetch_add(1, std::memory_order_relaxed);
  if (warming_up(BenchClock::now())) {
    warmup_errors_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  errors_[code >= 0 && code < 17 ? code : 2].fetch_add(
      1, std::memory_order_relaxed);
}

void LoadControl::WorkerStarted() {
  std::lock_guard<std::mutex> lock(mu_);
  ++live_workers_;
}

void LoadControl::WorkerFinished() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--live_workers_ == 0) finished_.notify_all();
}

LoadResult LoadControl::Finish() {
  std::unique_lock<std::mutex> lock(mu_);
  finished_.wait(lock, [this] { return live_workers_ == 0; });
  LoadResult result;
  for (Book& book : books_) {
    result.operations += book.operations;
    result.units += book.units;
  }
  LatencySamples all;
  for (const Book& book : books_) all.Merge(book.latencies);
  result.latency = all.Summarize();
  const BenchClock::time_point end =
      plan_.operations > 0 ? stopped_at_ : measure_end_;
  result.wall =
      absl::FromChrono(std::max(end, measure_start_) - measure_start_);
  for (int code = 0; code < 17; ++code) {
    if (errors_[code] > 0) result.errors[code] = errors_[code];
  }
  result.warmup_errors = warmup_errors_;
  return result;
}

namespace {

// One closed-loop unary worker; deletes itself once stopped.
class UnaryWorker {
 public:
  UnaryWorker(LoadControl& control, int worker, const Connection& connection,
              UnaryCallStarter start, int64_t units)
      : control_(control),
        worker_(worker),
        connection_(connection),
        start_(std::move(start)),
        units_(units) {}

  void Next() {
    if (control_.ShouldStop()) {
      LoadControl& control = control_;
      delete this;
      control.WorkerFinished();
      return;
    }
    context_ = std::make_unique<grpc::ClientContext>();
    connection_.Prepare(context_.get());
    started_ = BenchClock::now();
    start_(context_.get(), [this](grpc::Status status) {
      if (status.ok()) {
        control_.RecordSuccess(worker_, started_, units_);
      } else {
        control_.RecordError(status.error_code());
      }
      Next();
    });
  }

 private:
  LoadControl& control_;
  const int worker_;
  const Connection& connection_;
  const UnaryCallStarter start_;
  const int64_t units_;
  std::unique_ptr<grpc::ClientContext> context_;
  BenchClock::time_point started_;
};

}  // namespace

void StartUnaryWorker(LoadControl& control, int worker,
                      const Connection& connection, UnaryCallStarter start,
                      int64_t units) {
  control.WorkerStarted();
  (new UnaryWorker(control, worker, connection, std::move(start), units))
      ->Next();
}

}  // namespace rnnserve::client
