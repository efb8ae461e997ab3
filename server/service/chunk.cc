#include "server/service/chunk.h"

#include <utility>

namespace rnnserve::service {

PendingChunk::PendingChunk(const v1::RegressRequest& request,
                           const sessions::Session& session,
                           const model::ModelConfig& config,
                           v1::RegressResponse& response)
    : first_step_(request.reset_state() ? 0 : session.next_step),
      steps_(request.steps()),
      reset_(request.reset_state()),
      end_session_(request.end_session()),
      state_(session.state.size(), 0.0f) {
  response.mutable_outputs()->Resize(
      static_cast<int>(steps_) * config.output_size, 0.0f);
}

engine::RegressItem PendingChunk::Item(const v1::RegressRequest& request,
                                       const sessions::Session& session,
                                       v1::RegressResponse& response) {
  engine::RegressItem item;
  item.steps = static_cast<int>(steps_);
  item.inputs = {request.values().data(),
                 static_cast<size_t>(request.values_size())};
  // A reset chunk starts from zeros: an empty state_in.
  if (!reset_) item.state_in = session.state;
  item.state_out = state_;
  item.outputs = {response.mutable_outputs()->mutable_data(),
                  static_cast<size_t>(response.outputs_size())};
  return item;
}

void PendingChunk::Describe(const sessions::Session& session,
                            const model::ModelConfig& config, bool with_token,
                            v1::RegressResponse& response) const {
  if (with_token) response.set_session_token(session.token);
  response.set_model_version(config.version);
  response.set_first_step(first_step_);
  response.set_steps(steps_);
  response.set_session_ended(end_session_);
}

void PendingChunk::Commit(sessions::Lease& lease) {
  // A new session exists from its first committed chunk on: one whose
  // first chunk fails goes with its lease, unseen and uncounted.
  lease.Commit();
  // A control request without steps leaves the state as it was, or zeros
  // after a reset; state_ holds zeros then.
  if (steps_ > 0 || reset_) lease->state = std::move(state_);
  lease->next_step = first_step_ + steps_;
  if (end_session_) lease.End();
}

}  // namespace rnnserve::service
