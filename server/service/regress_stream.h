// One Regress stream: a session's chunks, one at a time, in order.
#ifndef RNNSERVE_SERVER_SERVICE_REGRESS_STREAM_H_
#define RNNSERVE_SERVER_SERVICE_REGRESS_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "rnnserve/v1/inference.grpc.pb.h"
#include "server/service/chunk.h"
#include "server/service/serving_state.h"
#include "server/sessions/session_store.h"

namespace rnnserve::service {

// Reads a request, runs its chunk on a compute thread, writes the answer,
// then reads the next: at most one operation is outstanding, so the stream's
// members are touched by one thread at a time. The session's state moves on
// only once the answer has been handed to the transport; when the stream
// ends, however it ends, the session is detached and stays resumable until
// its idle TTL. Deletes itself when gRPC is done with it.
//
// The stream carries raw messages: each request is parsed here, its text
// fields checked first (text_fields.h), so that one that is not UTF-8 ends
// the stream with INVALID_ARGUMENT naming the field, and nothing is logged.
class RegressStream final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  RegressStream(const ServingState& state,
                grpc::CallbackServerContext* context);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;
  // The client cancelled, or gRPC did at the deadline: the chunk in flight
  // is dropped if still queued.
  void OnCancel() override {
    cancelled_.store(true, std::memory_order_release);
  }

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
  void Fail(const absl::Status& status);
  void FinishAndDetach(const grpc::Status& status);

  const ServingState& state_;
  grpc::CallbackServerContext* const context_;
  runtime::ModelRuntime* model_ = nullptr;
  metrics::ModelMetrics* metrics_ = nullptr;
  sessions::Lease lease_;
  bool token_sent_ = false;
  bool ended_ = false;  // The session was ended by end_session.
  grpc::ByteBuffer request_body_;
  grpc::ByteBuffer response_body_;
  v1::RegressRequest request_;
  v1::RegressResponse response_;
  std::optional<PendingChunk> chunk_;
  absl::Time received_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_REGRESS_STREAM_H_
