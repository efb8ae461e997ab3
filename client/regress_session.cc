#include "client/regress_session.h"

#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/common/status_macros.h"

namespace rnnserve::client {
namespace {

RegressSession::Options OptionsFor(RegressSession::Transport transport) {
  RegressSession::Options options;
  options.transport = transport;
  return options;
}

}  // namespace

RegressSession::RegressSession(const Connection& connection, std::string model,
                               std::string token, Options options)
    : connection_(connection),
      model_(std::move(model)),
      token_(std::move(token)),
      options_(std::move(options)),
      position_(options_.position),
      random_(options_.seed != 0 ? options_.seed : std::random_device()()) {
  // A new session starts at 0; a resumed one is wherever it stopped.
  if (token_.empty()) position_ = 0;
  if (!options_.sleep)
    options_.sleep = [](absl::Duration d) { absl::SleepFor(d); };
}

RegressSession::RegressSession(const Connection& connection, std::string model,
                               std::string token, Transport transport)
    : RegressSession(connection, std::move(model), std::move(token),
                     OptionsFor(transport)) {}

RegressSession::~RegressSession() { CloseStream().IgnoreError(); }

absl::StatusOr<uint64_t> RegressSession::ReadPosition() {
  if (token_.empty()) {
    return absl::FailedPreconditionError(
        "no session to read the position of: the first chunk starts one");
  }
  // Zero steps, no reset, no end: the server runs nothing and answers the
  // session's position as first_step.
  ASSIGN_OR_RETURN(v1::RegressResponse response,
                   SendWithRetries(v1::RegressRequest(), "position read"));
  position_ = response.first_step();
  return *position_;
}

absl::StatusOr<v1::RegressResponse> RegressSession::Send(
    v1::RegressRequest chunk) {
  if (!position_.has_value()) RETURN_IF_ERROR(ReadPosition().status());
  const uint64_t from = *position_;
  chunk.set_expected_first_step(from);
  ASSIGN_OR_RETURN(v1::RegressResponse response,
                   SendWithRetries(chunk, "chunk"));
  // A reset zeroes the step counter before the chunk runs.
  const uint64_t want = chunk.reset_state() ? 0 : from;
  if (response.first_step() != want) {
    return absl::InternalError(
        absl::StrCat("the server answered the chunk sent from step ", from,
                     " as if it ran from step ", response.first_step(),
                     "; does it predate expected_first_step?"));
  }
  position_ = response.first_step() + response.steps();
  return response;
}

absl::StatusOr<v1::RegressResponse> RegressSession::SendWithRetries(
    const v1::RegressRequest& request, const char* what) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int attempt = 0;; ++attempt) {
    Attempt result = SendOnce(request);
    if (auto* response = std::get_if<v1::RegressResponse>(&result)) {
      if (!response->session_token().empty()) {
        token_ = response->session_token();
      } else if (token_.empty()) {
        return absl::InternalError(
            "the server's first answer carries no session token");
      }
      if (response->replayed()) ++replays_;
      return std::move(*response);
    }
    const Failure& failure = std::get<Failure>(result);
    const ChunkFailure kind = ClassifyChunkFailure(
        failure.status.error_code(), failure.status.error_message(),
        failure.server_position);
    if (kind != ChunkFailure::kRetry) {
      const absl::Status status = Explain(failure, request);
      // A resent last chunk whose first answer was lost may well have
      // ended the session: say so rather than only "no such session".
      if (attempt > 0 && request.end_session() &&
          status.code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(absl::StrCat(
            "the session is gone after a resend of the chunk that ends it: "
            "most likely that chunk was applied and ended the session, and "
            "its answer was lost: ",
            status.message()));
      }
      return status;
    }
    if (attempt >= options_.retry.max_retries) {
      return absl::Status(
          static_cast<absl::StatusCode>(failure.status.error_code()),
          absl::StrCat(
              "gave up on the ", what, " after ", attempt,
              " retries (--retries): ", Explain(failure, request).message()));
    }
    ++retries_;
    // Without a token the lost answer was a new session's first: the resend
    // starts a new session (the server's orphan, if any, expires unused).
    if (token_.empty()) ++restarts_;
    options_.sleep(BackoffDelay(options_.retry, attempt + 1, unit(random_)));
  }
}

RegressSession::Attempt RegressSession::SendOnce(
    const v1::RegressRequest& request) {
  return options_.transport == Transport::kStream ? SendOnStream(request)
                                                  : SendUnary(request);
}

absl::Status RegressSession::Explain(const Failure& failure,
                                     const v1::RegressRequest& request) const {
  const char* method =
      options_.transport == Transport::kStream ? "Regress" : "RegressChunk";
  const absl::Status status = FromGrpc(failure.status, method);
  switch (ClassifyChunkFailure(failure.status.error_code(),
                               failure.status.error_message(),
                               failure.server_position)) {
    case ChunkFailure::kTakenOver:
      return absl::AbortedError(absl::StrCat(
          "another call took the session over (its token was presented "
          "elsewhere); not retried, since that client holds it now: ",
          status.message()));
    case ChunkFailure::kPositionMismatch:
      return absl::FailedPreconditionError(absl::StrCat(
          "the client and the server disagree on the session: this client "
          "sent the chunk from step ",
          request.expected_first_step(), " but the session is at step ",
          *failure.server_position,
          " (another client moved it on, or reset it): ", status.message()));
    default:
      return status;
  }
}

RegressSession::Attempt RegressSession::SendUnary(v1::RegressRequest request) {
  request.set_model(model_);
  request.set_model_version(options_.model_version);
  request.set_session_token(token_);
  grpc::ClientContext context;
  connection_.Prepare(&context);
  ++calls_;
  v1::RegressResponse response;
  grpc::Status status =
      connection_.inference().RegressChunk(&context, request, &response);
  if (!status.ok()) {
    return Failure{status, ServerPosition(context.GetServerTrailingMetadata())};
  }
  return response;
}

RegressSession::Attempt RegressSession::SendOnStream(
    v1::RegressRequest request) {
  if (stream_ == nullptr) {
    context_ = std::make_unique<grpc::ClientContext>();
    connection_.Prepare(context_.get());
    stream_ = connection_.inference().Regress(context_.get());
    stream_answered_ = false;
    ++calls_;
    // The model and token are required only on a stream's first request.
    request.set_model(model_);
    request.set_model_version(options_.model_version);
    request.set_session_token(token_);
  }
  if (!stream_->Write(request)) return FailStream();
  v1::RegressResponse response;
  if (!stream_->Read(&response)) return FailStream();
  if (!stream_answered_ && response.session_token().empty()) {
    CloseStream().IgnoreError();
    return Failure{grpc::Status(grpc::StatusCode::INTERNAL,
                                "the first answer of the stream carries no "
                                "session token"),
                   std::nullopt};
  }
  stream_answered_ = true;
  // The server refuses anything after the end of a session: finish now.
  // The answer is in; how the finished stream closes no longer matters.
  if (response.session_ended()) CloseStream().IgnoreError();
  return response;
}

RegressSession::Failure RegressSession::FailStream() {
  Failure failure{stream_->Finish(), std::nullopt};
  failure.server_position =
      ServerPosition(context_->GetServerTrailingMetadata());
  stream_.reset();
  context_.reset();
  if (failure.status.ok()) {
    // Nobody should end a stream with OK while a chunk waits for its answer;
    // whatever did, the chunk's fate is unknown: resend it.
    failure.status =
        grpc::Status(grpc::StatusCode::ABORTED,
                     "the stream ended with OK before the chunk was answered");
  }
  return failure;
}

absl::Status RegressSession::CloseStream() {
  if (stream_ == nullptr) return absl::OkStatus();
  stream_->WritesDone();
  v1::RegressResponse extra;
  int unexpected = 0;
  while (stream_->Read(&extra)) ++unexpected;
  const grpc::Status status = stream_->Finish();
  const std::optional<uint64_t> position =
      ServerPosition(context_->GetServerTrailingMetadata());
  stream_.reset();
  context_.reset();
  // Every chunk was answered: a server that went away meanwhile (draining,
  // restarting) or a cut stream loses nothing, and the next chunk resumes
  // the session on a new call. Anything else is a real error.
  if (!status.ok() &&
      ClassifyChunkFailure(status.error_code(), status.error_message(),
                           position) != ChunkFailure::kRetry) {
    return FromGrpc(status, "Regress (closing)");
  }
  if (unexpected > 0) {
    return absl::InternalError(absl::StrCat(
        "Regress: ", unexpected, " answers arrived after the last chunk"));
  }
  return absl::OkStatus();
}

}  // namespace rnnserve::client
