#include "client/regress_session.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace rnnserve::client {

RegressSession::RegressSession(const Connection& connection, std::string model,
                               std::string token, Transport transport)
    : connection_(connection),
      model_(std::move(model)),
      token_(std::move(token)),
      transport_(transport) {}

RegressSession::~RegressSession() { CloseStream().IgnoreError(); }

absl::StatusOr<v1::RegressResponse> RegressSession::Send(
    v1::RegressRequest chunk) {
  absl::StatusOr<v1::RegressResponse> response =
      transport_ == Transport::kStream ? SendOnStream(std::move(chunk))
                                       : SendUnary(std::move(chunk));
  if (!response.ok()) return response;
  if (!response->session_token().empty()) {
    token_ = response->session_token();
  } else if (token_.empty()) {
    return absl::InternalError(
        "the server's first answer carries no session token");
  }
  return response;
}

absl::StatusOr<v1::RegressResponse> RegressSession::SendUnary(
    v1::RegressRequest chunk) {
  chunk.set_model(model_);
  chunk.set_session_token(token_);
  grpc::ClientContext context;
  connection_.Prepare(&context);
  ++calls_;
  v1::RegressResponse response;
  grpc::Status status =
      connection_.inference().RegressChunk(&context, chunk, &response);
  if (!status.ok()) return FromGrpc(status, "RegressChunk");
  return response;
}

absl::StatusOr<v1::RegressResponse> RegressSession::SendOnStream(
    v1::RegressRequest chunk) {
  const bool opening = stream_ == nullptr;
  if (opening) {
    context_ = std::make_unique<grpc::ClientContext>();
    connection_.Prepare(context_.get());
    stream_ = connection_.inference().Regress(context_.get());
    stream_answered_ = false;
    ++calls_;
  }
  // The model and token are required only on a stream's first request.
  if (opening) {
    chunk.set_model(model_);
    chunk.set_session_token(token_);
  }
  if (!stream_->Write(chunk)) return FailStream();
  v1::RegressResponse response;
  if (!stream_->Read(&response)) return FailStream();
  if (!stream_answered_ && response.session_token().empty()) {
    CloseStream().IgnoreError();
    return absl::InternalError(
        "Regress: the first answer of the stream carries no session token");
  }
  stream_answered_ = true;
  // The server refuses anything after the end of a session: finish now.
  if (response.session_ended()) {
    if (absl::Status status = CloseStream(); !status.ok()) return status;
  }
  return response;
}

absl::Status RegressSession::FailStream() {
  const grpc::Status status = stream_->Finish();
  stream_.reset();
  context_.reset();
  if (!status.ok()) return FromGrpc(status, "Regress");
  return absl::InternalError(
      "Regress: the server ended the stream with OK before answering every "
      "chunk");
}

absl::Status RegressSession::CloseStream() {
  if (stream_ == nullptr) return absl::OkStatus();
  stream_->WritesDone();
  v1::RegressResponse extra;
  int unexpected = 0;
  while (stream_->Read(&extra)) ++unexpected;
  const grpc::Status status = stream_->Finish();
  stream_.reset();
  context_.reset();
  if (!status.ok()) return FromGrpc(status, "Regress (closing)");
  if (unexpected > 0) {
    return absl::InternalError(absl::StrCat(
        "Regress: ", unexpected, " answers arrived after the last chunk"));
  }
  return absl::OkStatus();
}

}  // namespace rnnserve::client
