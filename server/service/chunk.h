// One request of a streaming session, from its arrival to its answer;
// shared by the Regress stream and RegressChunk.
#ifndef RNNSERVE_SERVER_SERVICE_CHUNK_H_
#define RNNSERVE_SERVER_SERVICE_CHUNK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rnnserve/v1/inference.pb.h"
#include "server/engine/engine.h"
#include "server/model/model.h"
#include "server/runtime/model_runtime.h"
#include "server/service/model_set.h"
#include "server/service/serving_state.h"
#include "server/sessions/session_store.h"

namespace rnnserve::service {

// What a request does to its session. The session's state changes only by
// the commit of the chunk's result, made before the answer is sent; until
// then the call's copy of the session is as it was.
class PendingChunk {
 public:
  enum class Kind {
    kRun,     // Steps to run, then commit.
    kCommit,  // No steps, but a commit: a reset, an end, a new session.
    kReplay,  // A retry of the last applied chunk: its stored answer.
    kRead,    // No steps and nothing to change: the session's position.
  };

  // Decides what `request` (already validated) does to `session`, and sizes
  // the response's outputs, which the engine writes in place.
  // FAILED_PRECONDITION naming the session's position when the request's
  // expected_first_step is neither the position nor a retry of the last
  // chunk (sessions::PositionMismatch).
  static absl::StatusOr<PendingChunk> Prepare(
      const v1::RegressRequest& request,
      const sessions::AttachedSession& session,
      const model::ModelConfig& config, v1::RegressResponse& response);

  Kind kind() const { return kind_; }

  // What the engine runs (kRun). `request`, `session` and `response` must
  // outlive the run.
  engine::RegressItem Item(const v1::RegressRequest& request,
                           const sessions::AttachedSession& session,
                           v1::RegressResponse& response);

  // The commit of the chunk's result (kRun, after the engine, or kCommit).
  // Its spans point into this chunk and `response`.
  sessions::SessionCommit Commit(const sessions::AttachedSession& session,
                                 const v1::RegressResponse& response) const;

  // The commit succeeded: the call's copy of the session follows it.
  void Applied(sessions::AttachedSession& session,
               const v1::RegressResponse& response);

  // Fills the response's bookkeeping fields, and its step_top from its
  // outputs (run or replayed) when the request asked for top_k. `with_token`
  // on a stream's first response and on every RegressChunk response.
  void Describe(const sessions::AttachedSession& session,
                const model::ModelConfig& config, bool with_token,
                v1::RegressResponse& response) const;

  bool end_session() const { return end_session_; }

 private:
  PendingChunk() = default;

  Kind kind_ = Kind::kRead;
  uint64_t from_ = 0;        // The session's position before the chunk.
  uint64_t first_step_ = 0;  // Where the chunk's first step lands.
  uint32_t steps_ = 0;
  uint32_t top_k_ = 0;  // The request's, clamped to the output size.
  bool reset_ = false;
  bool end_session_ = false;
  std::string digest_;
  std::vector<float> state_;  // The state after the chunk.
};

// A session and the model version it runs on.
struct AttachedModelSession {
  ModelLease model;
  sessions::AttachedSession session;
};

// The model version and session a stream's first request, or a RegressChunk
// call, names, with the request validated against that version: a new
// session on the request's model_version (empty: the newest) for an empty
// session_token, else the session taken over, on the version it started on
// (the newest for a session that recorded none). A resumed session whose
// version is not loaded here is FAILED_PRECONDITION naming it; a
// model_version other than the session's is INVALID_ARGUMENT. The request
// is validated before any take-over against the version it names, or the
// newest; only when it resumes a session without naming a version and the
// model has several versions (which may differ in sizes) is a request that
// fails there validated after the take-over, against the session's version.
absl::StatusOr<AttachedModelSession> AttachModelSession(
    const ServingState& state, const v1::RegressRequest& request,
    const std::string& caller);

// Commits a chunk of kind kCommit on the calling thread.
absl::Status CommitNow(const ServingState& state, const PendingChunk& chunk,
                       const sessions::AttachedSession& session,
                       const v1::RegressResponse& response);

// Counts a replayed answer of a session on `config`'s model version.
void NoteReplay(const ServingState& state, const model::ModelConfig& config);

// The digest of what a chunk asks: its steps, reset and values. Two
// requests with one digest are the same chunk.
std::string ChunkDigest(const v1::RegressRequest& request);

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_CHUNK_H_
