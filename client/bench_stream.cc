#include "client/bench_stream.h"

#include <atomic>

#include "rnnserve/v1/inference.grpc.pb.h"

namespace rnnserve::client {
namespace {

// One stream of one session. Deletes itself in OnDone, after starting its
// replacement if the run goes on.
class StreamCall final
    : public grpc::ClientBidiReactor<v1::RegressRequest, v1::RegressResponse> {
 public:
  StreamCall(LoadControl& control, int worker, const Connection& connection,
             const StreamBenchPlan& plan)
      : control_(control),
        worker_(worker),
        connection_(connection),
        plan_(plan) {
    // The model goes on the first request only; the token is not needed on
    // the stream that opened the session.
    first_.set_model(plan.model);
    for (v1::RegressRequest* r : {&first_, &chunk_}) {
      r->set_steps(plan.chunk_steps);
      r->mutable_values()->Add(plan.chunk_values.begin(),
                               plan.chunk_values.end());
    }
    end_.set_end_session(true);
  }

  void Begin() {
    connection_.PrepareWithDeadline(&context_, plan_.deadline);
    connection_.inference(worker_).async()->Regress(&context_, this);
    Send(&first_);
    StartCall();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) failed_.store(true);
    Step();
  }

  void OnReadDone(bool ok) override {
    if (!ok) failed_.store(true);
    Step();
  }

  void OnDone(const grpc::Status& status) override {
    if (!status.ok()) control_.RecordError(status.error_code());
    LoadControl& control = control_;
    const int worker = worker_;
    const Connection& connection = connection_;
    const StreamBenchPlan& plan = plan_;
    delete this;
    if (control.ShouldStop()) {
      control.WorkerFinished();
    } else {
      // The stream ended early: carry on with a new session.
      (new StreamCall(control, worker, connection, plan))->Begin();
    }
  }

 private:
  // A write and a read of its answer; Step runs once both are done.
  void Send(const v1::RegressRequest* request) {
    pending_.store(2);
    started_ = BenchClock::now();
    StartWrite(request);
    StartRead(&response_);
  }

  void Step() {
    if (pending_.fetch_sub(1) != 1) return;
    // A failed write or read: the stream is over and OnDone follows.
    if (failed_.load()) return;
    if (ending_) {
      StartWritesDone();
      return;
    }
    control_.RecordSuccess(worker_, started_, plan_.chunk_steps);
    if (control_.ShouldStop()) {
      // Free the server's session now rather than at its TTL.
      ending_ = true;
      Send(&end_);
      return;
    }
    Send(&chunk_);
  }

  LoadControl& control_;
  const int worker_;
  const Connection& connection_;
  const StreamBenchPlan& plan_;

  grpc::ClientContext context_;
  v1::RegressRequest first_, chunk_, end_;
  v1::RegressResponse response_;
  BenchClock::time_point started_;
  std::atomic<int> pending_{0};
  std::atomic<bool> failed_{false};
  bool ending_ = false;  // Only Step touches it, once per exchange.
};

}  // namespace

void StartStreamWorker(LoadControl& control, int worker,
                       const Connection& connection,
                       const StreamBenchPlan& plan) {
  control.WorkerStarted();
  (new StreamCall(control, worker, connection, plan))->Begin();
}

}  // namespace rnnserve::client
