#include "server/service/regress_stream.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/service/call_util.h"
#include "server/service/status.h"
#include "server/service/text_fields.h"
#include "server/service/validation.h"

namespace rnnserve::service {
namespace {

// Carries one chunk through the runtime and back to its stream.
class StreamChunkTask final : public runtime::RegressTask {
 public:
  explicit StreamChunkTask(RegressStream* stream) : stream_(stream) {}
  bool cancelled() const override { return stream_->cancelled(); }
  void Done(absl::Status status) override {
    stream_->ChunkDone(std::move(status));
  }

 private:
  RegressStream* const stream_;
};

}  // namespace

RegressStream::RegressStream(const ServingState& state,
                             grpc::CallbackServerContext* context,
                             std::string caller, CallSlot slot)
    : state_(state),
      context_(context),
      caller_(std::move(caller)),
      slot_(std::move(slot)) {
  if (state_.admission != nullptr) {
    if (absl::Status s = state_.admission->AdmitStream(this); !s.ok()) {
      FinishAndDetach(ToGrpcStatus(s));
      return;
    }
    registered_ = true;
  }
  ReadNext();
}

void RegressStream::ReadNext() {
  {
    absl::MutexLock lock(&mu_);
    if (!draining_) {
      reading_ = true;
      // Its OnReadDone never runs inline, so holding mu_ here is safe.
      StartRead(&request_body_);
      return;
    }
  }
  FinishAndDetach(DrainStatus());
}

grpc::Status RegressStream::DrainStatus() const {
  // After end_session nothing is left to resume, nor to do on this stream.
  if (ended_) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      session_.has_value()
                          ? "server draining; resume with your session token"
                          : Admission::kRefusal);
}

void RegressStream::Drain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
  // A chunk in flight is answered and committed first; ReadNext() then ends
  // the stream.
  if (!reading_ || finished_) return;
  // Waiting for the client: end now. The pending read then completes, not
  // ok, and OnDone follows; neither runs inline in Finish().
  finished_ = true;
  const grpc::Status status = DrainStatus();
  slot_.Release();
  Finish(status);
}

void RegressStream::OnReadDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    reading_ = false;
    // Drained while waiting: the stream is finished; a request that came
    // anyway was not run, so the client resends it on resuming.
    if (finished_) return;
  }
  if (!ok) {
    // The client closed its side, or the call broke; the session stays.
    FinishAndDetach(grpc::Status::OK);
    return;
  }
  received_ = state_.clock->Now();
  // On success the chunk is in flight and may already be answered on
  // another thread: touch nothing after Handle() returns OK.
  if (absl::Status status = Handle(); !status.ok()) Fail(status);
}

absl::Status RegressStream::Attach() {
  metrics_ = state_.MetricsFor(request_.model(), request_.model_version());
  // A bad request takes nothing over.
  ASSIGN_OR_RETURN(AttachedModelSession attached,
                   AttachModelSession(state_, request_, caller_));
  model_ = attached.model;
  // A resumed session may run on another version.
  metrics_ = state_.MetricsFor(*model_);
  session_ = std::move(attached.session);
  return absl::OkStatus();
}

absl::Status RegressStream::Handle() {
  RETURN_IF_ERROR(ParseRequest(request_body_, request_));
  if (ended_) {
    return absl::FailedPreconditionError(
        "the session was ended by end_session; no request may follow it on "
        "this stream");
  }
  if (!session_.has_value()) {
    RETURN_IF_ERROR(Attach());
  } else {
    if (!request_.model().empty() &&
        request_.model() != model_->config().name) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model: this stream's session belongs to model \"",
          model_->config().name, "\"; leave model empty or name it"));
    }
    if (!request_.model_version().empty() &&
        request_.model_version() != model_->config().version) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model_version: this stream's session runs on version \"",
          model_->config().version,
          "\"; leave model_version empty or name it"));
    }
    if (!request_.session_token().empty() &&
        request_.session_token() != session_->token) {
      return absl::InvalidArgumentError(
          "session_token: differs from this stream's session; a stream "
          "serves one session");
    }
    RETURN_IF_ERROR(ValidateChunk(request_, model_->config(), state_.limits));
  }
  const model::ModelConfig& config = model_->config();
  response_.Clear();
  ASSIGN_OR_RETURN(
      chunk_, PendingChunk::Prepare(request_, *session_, config, response_));
  switch (chunk_->kind()) {
    case PendingChunk::Kind::kRun:
      break;
    case PendingChunk::Kind::kCommit:
      RETURN_IF_ERROR(CommitNow(state_, *chunk_, *session_, response_));
      chunk_->Applied(*session_, response_);
      Respond();
      return absl::OkStatus();
    case PendingChunk::Kind::kReplay:
      NoteReplay(state_, config);
      [[fallthrough]];
    case PendingChunk::Kind::kRead:
      Respond();
      return absl::OkStatus();
  }
  std::unique_ptr<runtime::RegressTask> task =
      std::make_unique<StreamChunkTask>(this);
  task->item = chunk_->Item(request_, *session_, response_);
  task->commit = chunk_->Commit(*session_, response_);
  task->deadline = Deadline(*context_);
  return model_->Regress(task);
}

void RegressStream::ChunkDone(absl::Status status) {
  if (!status.ok()) {
    Fail(status);
    return;
  }
  chunk_->Applied(*session_, response_);
  Respond();
}

void RegressStream::Respond() {
  chunk_->Describe(*session_, model_->config(), !token_sent_, response_);
  response_body_.Clear();  // Still holds the previous answer.
  bool own_buffer = false;
  if (!grpc::SerializationTraits<v1::RegressResponse>::Serialize(
           response_, &response_body_, &own_buffer)
           .ok()) {
    Fail(absl::InternalError("the response could not be serialized"));
    return;
  }
  StartWrite(&response_body_);
}

void RegressStream::OnWriteDone(bool ok) {
  if (!ok) {
    // The client is gone. The chunk is applied; a retry from where it was
    // sent gets its answer again.
    Fail(absl::CancelledError("the client went away"));
    return;
  }
  token_sent_ = true;
  ended_ = chunk_->end_session();
  chunk_.reset();
  if (metrics_ != nullptr) {
    metrics_->RequestDone(metrics::Method::kRegress, absl::StatusCode::kOk,
                          state_.clock->Now() - received_);
  }
  ReadNext();
}

void RegressStream::Fail(const absl::Status& status) {
  if (metrics_ != nullptr) {
    metrics_->RequestDone(metrics::Method::kRegress, status.code(),
                          state_.clock->Now() - received_);
  }
  AddTrailingDetails(status, *context_);
  FinishAndDetach(ToGrpcStatus(status));
}

void RegressStream::FinishAndDetach(const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
  }
  slot_.Release();
  Finish(status);
}

void RegressStream::OnDone() {
  if (registered_) state_.admission->Remove(this);
  delete this;
}

}  // namespace rnnserve::service
