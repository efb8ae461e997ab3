// One chunk of a streaming session, from request to committed state; shared
// by the Regress stream and RegressChunk.
#ifndef RNNSERVE_SERVER_SERVICE_CHUNK_H_
#define RNNSERVE_SERVER_SERVICE_CHUNK_H_

#include <cstdint>
#include <vector>

#include "rnnserve/v1/inference.pb.h"
#include "server/engine/engine.h"
#include "server/model/model.h"
#include "server/sessions/session_store.h"

namespace rnnserve::service {

// A chunk between its request and the commit of its result. The session's
// state changes only at Commit, so a chunk whose answer never leaves leaves
// the session as it was.
class PendingChunk {
 public:
  // Prepares `request` (already validated) on `session`, and sizes the
  // response's outputs, which the engine writes in place.
  PendingChunk(const v1::RegressRequest& request,
               const sessions::Session& session,
               const model::ModelConfig& config, v1::RegressResponse& response);

  // What the engine runs; only when steps() > 0. `request`, `session` and
  // `response` must outlive the run.
  engine::RegressItem Item(const v1::RegressRequest& request,
                           const sessions::Session& session,
                           v1::RegressResponse& response);

  uint32_t steps() const { return steps_; }

  // Fills the response's bookkeeping fields. `with_token` on a stream's
  // first response and on every RegressChunk response.
  void Describe(const sessions::Session& session,
                const model::ModelConfig& config, bool with_token,
                v1::RegressResponse& response) const;

  // The chunk's result becomes the session's state; commits a new session
  // (see sessions::Lease::Commit); ends the session when asked to.
  void Commit(sessions::Lease& lease);

 private:
  uint64_t first_step_;
  uint32_t steps_;
  bool reset_;
  bool end_session_;
  std::vector<float> state_;  // The state after the chunk.
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_CHUNK_H_
