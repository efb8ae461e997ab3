#include "server/service/unary_call.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include "server/service/authenticate.h"
#include "server/service/call_util.h"
#include "server/service/status.h"

namespace rnnserve::service {
namespace {

std::atomic<int64_t> request_bytes_read{0};

}  // namespace

int64_t UnaryRequestBytesRead() {
  return request_bytes_read.load(std::memory_order_relaxed);
}

UnaryCall::UnaryCall(const ServingState& state,
                     grpc::CallbackServerContext& context,
                     metrics::Method method, const char* rpc)
    : state_(state),
      context_(context),
      start_(state.clock->Now()),
      deadline_(Deadline(context)),
      method_(method),
      rpc_(rpc) {}

void UnaryCall::Start() {
  // A server shutting down refuses with UNAVAILABLE, which clients retry.
  if (absl::Status status = state_.admission != nullptr
                                ? state_.admission->Admit()
                                : absl::OkStatus();
      !status.ok()) {
    Finish(ToGrpcStatus(status));
    return;
  }
  // Before any read: an unauthenticated caller learns nothing, not even
  // which models exist, and costs no more than its metadata.
  absl::StatusOr<AdmittedCaller> admitted = AdmitCaller(state_, context_, rpc_);
  if (!admitted.ok()) {
    Finish(ToGrpcStatus(admitted.status()));
    return;
  }
  caller_ = std::move(admitted->caller);
  slot_ = std::move(admitted->slot);
  StartRead(&request_body_);
}

void UnaryCall::OnReadDone(bool ok) {
  if (!ok) {
    // The client half-closed without a message, or the call broke.
    slot_.Release();
    Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("request: ", rpc_,
                                     " takes one request message, got none")));
    return;
  }
  request_bytes_read.fetch_add(static_cast<int64_t>(request_body_.Length()),
                               std::memory_order_relaxed);
  Handle(request_body_);
}

void UnaryCall::Answer(const google::protobuf::MessageLite& response) {
  bool own_buffer = false;
  grpc::Status serialized =
      grpc::GenericSerialize<grpc::ProtoBufferWriter,
                             google::protobuf::MessageLite>(
          response, &response_body_, &own_buffer);
  if (!serialized.ok()) {
    Fail(absl::InternalError("the response could not be serialized"));
    return;
  }
  Count(absl::StatusCode::kOk);
  slot_.Release();
  StartWriteAndFinish(&response_body_, grpc::WriteOptions(), grpc::Status::OK);
}

void UnaryCall::Fail(const absl::Status& status) {
  Count(status.code());
  slot_.Release();
  AddTrailingDetails(status, context_);
  Finish(ToGrpcStatus(status));
}

absl::Status UnaryCall::StillWanted() const {
  // The deadline first: gRPC cancels a call whose deadline passes, and
  // such a call must count as DEADLINE_EXCEEDED, not CANCELLED.
  if (state_.clock->Now() >= deadline_) {
    return absl::DeadlineExceededError(
        absl::StrCat(rpc_,
                     ": the call's deadline passed before its answer "
                     "was ready"));
  }
  if (cancelled()) {
    return absl::CancelledError(
        absl::StrCat(rpc_, ": the client cancelled the call"));
  }
  return absl::OkStatus();
}

void UnaryCall::Count(absl::StatusCode code) {
  if (metrics_ != nullptr) {
    metrics_->RequestDone(method_, code, state_.clock->Now() - start_);
  }
}

}  // namespace rnnserve::service
