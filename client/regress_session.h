// One streaming-regression session seen from the client: chunks sent in
// order over a Regress stream (reopened with the session token when closed)
// or as RegressChunk calls, each answered before the next is sent.
#ifndef RNNSERVE_CLIENT_REGRESS_SESSION_H_
#define RNNSERVE_CLIENT_REGRESS_SESSION_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/connection.h"
#include "rnnserve/v1/inference.grpc.pb.h"

namespace rnnserve::client {

// Blocking and not thread-safe: one thread drives a session.
class RegressSession {
 public:
  enum class Transport { kStream, kUnary };

  // `token` resumes that session; empty starts a new one with the first
  // chunk. `connection` must outlive the session.
  RegressSession(const Connection& connection, std::string model,
                 std::string token, Transport transport);
  // Closes an open stream, ignoring its status.
  ~RegressSession();

  // Sends one chunk (steps, values, reset_state, end_session are taken from
  // `chunk`; the model and token are filled in as the protocol wants) and
  // returns its answer. Opens a stream first when none is open. A failed
  // call closes the stream and returns the call's status.
  absl::StatusOr<v1::RegressResponse> Send(v1::RegressRequest chunk);

  // Ends the current stream cleanly (WritesDone, then Finish); the session
  // stays on the server and the next Send resumes it on a new stream. A
  // no-op without an open stream.
  absl::Status CloseStream();

  // The session token; empty until the first answer of a new session.
  const std::string& token() const { return token_; }
  // Streams opened (or RegressChunk calls made) so far.
  int calls() const { return calls_; }

 private:
  absl::StatusOr<v1::RegressResponse> SendOnStream(v1::RegressRequest chunk);
  absl::StatusOr<v1::RegressResponse> SendUnary(v1::RegressRequest chunk);
  // Finishes the stream after a failed Write or Read.
  absl::Status FailStream();

  const Connection& connection_;
  const std::string model_;
  std::string token_;
  const Transport transport_;
  int calls_ = 0;

  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::RegressRequest, v1::RegressResponse>>
      stream_;
  bool stream_answered_ = false;  // The open stream answered a chunk.
};

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_REGRESS_SESSION_H_
