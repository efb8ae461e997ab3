// One Regress stream: a session's chunks, one at a time, in order.
#ifndef RNNSERVE_SERVER_SERVICE_REGRESS_STREAM_H_
#define RNNSERVE_SERVER_SERVICE_REGRESS_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "rnnserve/v1/inference.grpc.pb.h"
#include "server/service/call_limiter.h"
#include "server/service/chunk.h"
#include "server/service/serving_state.h"
#include "server/sessions/session_store.h"

namespace rnnserve::service {

// Reads a request, runs its chunk on a compute thread, writes the answer,
// then reads the next: at most one operation is outstanding, so the stream's
// members are touched by one thread at a time. The session's state moves on
// only once the answer has been handed to the transport; when the stream
// ends, however it ends, the session is detached and stays resumable until
// its idle TTL. The stream holds `slot` in its caller's quota of calls in
// flight while it is open. When the server drains (Drain()), a stream
// waiting for its client's next request ends at once, and one with a chunk
// in flight ends once that chunk's answer is written and committed, both
// with UNAVAILABLE telling the client to resume its session. Deletes itself
// when gRPC is done with it.
//
// The stream carries raw messages: each request is parsed here, its text
// fields checked first (text_fields.h), so that one that is not UTF-8 ends
// the stream with INVALID_ARGUMENT naming the field, and nothing is logged.
class RegressStream final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
      public Drainable {
 public:
  // `caller`: see CallerId; it owns the sessions the stream creates, and
  // may resume only its own. Refused with UNAVAILABLE at once when the
  // server no longer takes calls.
  RegressStream(const ServingState& state, grpc::CallbackServerContext* context,
                std::string caller, CallSlot slot);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;
  // The client cancelled, or gRPC did at the deadline: the chunk in flight
  // is dropped if still queued.
  void OnCancel() override {
    cancelled_.store(true, std::memory_order_release);
  }
  void Drain() override;

  // The compute thread's answer for the chunk in flight.
  void ChunkDone(absl::Status status);

  // Any thread; lock-free, as the scheduler asks under its lock.
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

 private:
  // Checks the request, attaches the session on the first one, and starts
  // its chunk; an error ends the stream.
  absl::Status Handle();
  absl::Status Attach();
  void Respond();
  // Starts the next read, or ends the stream when draining.
  void ReadNext();
  // How a drained stream ends.
  grpc::Status DrainStatus() const;
  void Fail(const absl::Status& status);
  void FinishAndDetach(const grpc::Status& status);

  const ServingState& state_;
  grpc::CallbackServerContext* const context_;
  const std::string caller_;
  CallSlot slot_;
  ModelLease model_;  // Held while the stream is open.
  metrics::ModelMetrics* metrics_ = nullptr;
  // The session, as this stream last committed it (or took it over).
  std::optional<sessions::AttachedSession> session_;
  bool token_sent_ = false;
  bool ended_ = false;  // The session was ended by end_session.
  grpc::ByteBuffer request_body_;
  grpc::ByteBuffer response_body_;
  v1::RegressRequest request_;
  v1::RegressResponse response_;
  std::optional<PendingChunk> chunk_;
  absl::Time received_;
  std::atomic<bool> cancelled_{false};
  bool registered_ = false;  // With state_.admission, for Drain().
  // Drain() runs on another thread than the stream's own operations.
  absl::Mutex mu_;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;   // A read is outstanding.
  bool draining_ ABSL_GUARDED_BY(mu_) = false;  // Drain() was called.
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Finish() was called.
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_REGRESS_STREAM_H_
