#include "client/classify_runner.h"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace rnnserve::client {
namespace {

// The shared state of one run. Callbacks run on gRPC's threads; every field
// below the mutex is guarded by it.
class Runner {
 public:
  Runner(const Connection& connection,
         const std::vector<v1::ClassifyRequest>& requests)
      : connection_(connection),
        requests_(requests),
        responses_(requests.size()),
        contexts_(requests.size()),
        started_(requests.size()) {}

  absl::StatusOr<ClassifyRunResult> Run(int concurrency) {
    const absl::Time start = absl::Now();
    const size_t initial = std::min<size_t>(concurrency, requests_.size());
    {
      std::lock_guard<std::mutex> lock(mu_);
      next_ = initial;
      in_flight_ = initial;
    }
    for (size_t i = 0; i < initial; ++i) Launch(i);
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return in_flight_ == 0; });
    if (!error_.ok()) return error_;
    ClassifyRunResult result;
    result.wall = absl::Now() - start;
    result.responses = std::move(responses_);
    result.latencies = std::move(latencies_);
    return result;
  }

 private:
  void Launch(size_t i) {
    contexts_[i] = std::make_unique<grpc::ClientContext>();
    connection_.Prepare(contexts_[i].get());
    started_[i] = absl::Now();
    connection_.inference().async()->Classify(
        contexts_[i].get(), &requests_[i], &responses_[i],
        [this, i](grpc::Status status) { OnDone(i, std::move(status)); });
  }

  void OnDone(size_t i, grpc::Status status) {
    const absl::Duration latency = absl::Now() - started_[i];
    absl::Status checked = FromGrpc(status, "Classify");
    if (checked.ok() &&
        responses_[i].results_size() != requests_[i].sequences_size()) {
      checked = absl::InternalError(absl::StrCat(
          "Classify: the server answered ", responses_[i].results_size(),
          " results for ", requests_[i].sequences_size(), " sequences"));
    }
    size_t launch = 0;
    bool relaunch = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      contexts_[i].reset();
      latencies_.Add(latency);
      if (!checked.ok() && error_.ok()) error_ = checked;
      if (error_.ok() && next_ < requests_.size()) {
        launch = next_++;
        relaunch = true;
      } else if (--in_flight_ == 0) {
        // Run() may return, and destroy this Runner, as soon as the lock is
        // released: nothing below may touch a member then.
        done_.notify_all();
      }
    }
    // Outside the lock, for a call that fails at once calls back inline.
    // in_flight_ did not drop, so this Runner is still alive.
    if (relaunch) Launch(launch);
  }

  const Connection& connection_;
  const std::vector<v1::ClassifyRequest>& requests_;
  // Slot i is touched only by the launch and the callback of request i,
  // which gRPC orders.
  std::vector<v1::ClassifyResponse> responses_;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts_;
  std::vector<absl::Time> started_;

  std::mutex mu_;
  std::condition_variable done_;
  size_t next_ = 0;           // Guarded by mu_.
  size_t in_flight_ = 0;      // Guarded by mu_.
  absl::Status error_;        // Guarded by mu_.
  LatencySamples latencies_;  // Guarded by mu_.
};

}  // namespace

absl::StatusOr<ClassifyRunResult> RunClassifyRequests(
    const Connection& connection,
    const std::vector<v1::ClassifyRequest>& requests, int concurrency) {
  if (requests.empty()) return ClassifyRunResult();
  Runner runner(connection, requests);
  return runner.Run(std::max(concurrency, 1));
}

}  // namespace rnnserve::client
