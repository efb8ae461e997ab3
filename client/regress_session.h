// One streaming-regression session seen from the client: chunks sent in
// order over a Regress stream (reopened with the session token when closed)
// or as RegressChunk calls, each answered before the next is sent.
//
// Exactly once: the session tracks its position (first_step + steps of the
// last answer) and sends every chunk with expected_first_step set to it.
// When a call breaks (the replica went away, a proxy lost it, the server is
// draining or its session store is down) the same chunk is sent again from
// the same position on a new call, after a jittered exponential backoff; the
// server runs it if it had not, or answers it again from its stored answer
// (replayed) if it had. A session never restarts or resets on its own.
#ifndef RNNSERVE_CLIENT_REGRESS_SESSION_H_
#define RNNSERVE_CLIENT_REGRESS_SESSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/connection.h"
#include "client/retry_policy.h"
#include "rnnserve/v1/inference.grpc.pb.h"

namespace rnnserve::client {

// Blocking and not thread-safe: one thread drives a session.
// What one session's calls took, for a run's summary (RegressSession::Tally).
struct SessionTally {
  int calls = 0;     // Streams opened or unary calls, retries included.
  int retries = 0;   // Chunks resent after a broken call.
  int replays = 0;   // Answers the server sent again (replayed).
  int restarts = 0;  // New sessions begun again: the first answer was lost.
  std::string token;
};

class RegressSession {
 public:
  enum class Transport { kStream, kUnary };

  struct Options {
    Transport transport = Transport::kStream;
    RetryPolicy retry;
    // Where a resumed session stands, if the caller knows; otherwise it is
    // read from the server (a zero-step request) before the first chunk.
    std::optional<uint64_t> position;
    // Waits between attempts; absl::SleepFor when empty (tests inject one).
    std::function<void(absl::Duration)> sleep;
    // Seeds the backoff jitter; 0 takes one from std::random_device.
    uint32_t seed = 0;
    // The model version a new session runs on (empty: the newest); a
    // resumed session must be on it.
    std::string model_version;
  };

  // `token` resumes that session; empty starts a new one with the first
  // chunk. `connection` must outlive the session.
  RegressSession(const Connection& connection, std::string model,
                 std::string token, Options options);
  RegressSession(const Connection& connection, std::string model,
                 std::string token, Transport transport);
  // Closes an open stream, ignoring its status.
  ~RegressSession();

  // Sends one chunk (steps, values, reset_state, end_session are taken from
  // `chunk`; the model, token and expected_first_step are filled in as the
  // protocol wants) and returns its answer, which may be a replayed one.
  // Opens a stream first when none is open. A call that breaks is retried as
  // described above, up to the policy's budget; then, or on any other
  // failure, the stream is closed and the error returned:
  // FAILED_PRECONDITION when the server's session is at another position,
  // ABORTED when another call took the session over.
  absl::StatusOr<v1::RegressResponse> Send(v1::RegressRequest chunk);

  // Reads the session's position from the server (a zero-step request),
  // retrying like Send; it also becomes the position the next chunk is
  // sent from. Needs a token.
  absl::StatusOr<uint64_t> ReadPosition();

  // Ends the current stream cleanly (WritesDone, then Finish); the session
  // stays on the server and the next Send resumes it on a new stream. A
  // no-op without an open stream. A stream that ends with a status Send
  // would resend on (e.g. UNAVAILABLE from a draining server) closes OK:
  // every chunk on it was answered.
  absl::Status CloseStream();

  // The session token; empty until the first answer of a new session.
  const std::string& token() const { return token_; }
  // The position the next chunk is sent from, once known.
  std::optional<uint64_t> position() const { return position_; }
  // Streams opened (or RegressChunk calls made) so far, retries included.
  int calls() const { return calls_; }
  // Attempts that were resends of a chunk after a broken call.
  int retries() const { return retries_; }
  // Answers the server marked replayed (the chunk had been applied before
  // its first answer was lost).
  int replays() const { return replays_; }
  // New sessions started again because the first chunk's answer, and with
  // it the token, was lost.
  int restarts() const { return restarts_; }
  // All of the above and the token, at the end of a run.
  SessionTally Tally() const {
    return {calls_, retries_, replays_, restarts_, token_};
  }

 private:
  // One attempt's failure: the call's status and the position the server
  // named in its trailing metadata, if any.
  struct Failure {
    grpc::Status status;
    std::optional<uint64_t> server_position;
  };
  using Attempt = std::variant<v1::RegressResponse, Failure>;

  // Sends `request` until it is answered or fails for good; `what` names
  // the request in errors.
  absl::StatusOr<v1::RegressResponse> SendWithRetries(
      const v1::RegressRequest& request, const char* what);
  Attempt SendOnce(const v1::RegressRequest& request);
  Attempt SendUnary(v1::RegressRequest request);
  Attempt SendOnStream(v1::RegressRequest request);
  // Finishes the stream after a failed Write or Read.
  Failure FailStream();
  absl::Status Explain(const Failure& failure,
                       const v1::RegressRequest& request) const;

  const Connection& connection_;
  const std::string model_;
  std::string token_;
  Options options_;
  std::optional<uint64_t> position_;
  std::mt19937 random_;
  int calls_ = 0;
  int retries_ = 0;
  int replays_ = 0;
  int restarts_ = 0;

  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::RegressRequest, v1::RegressResponse>>
      stream_;
  bool stream_answered_ = false;  // The open stream answered a chunk.
};

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_REGRESS_SESSION_H_
