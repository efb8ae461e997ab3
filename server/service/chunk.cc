#include "server/service/chunk.h"

#include <algorithm>
#include <numeric>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/service/validation.h"
#include "server/sessions/digest.h"

namespace rnnserve::service {

namespace {

// One StepTop per step of the response's outputs: the k most probable
// classes, ties to the lower index.
void AddStepTops(const model::ModelConfig& config, uint32_t k,
                 v1::RegressResponse& response) {
  const int outputs = config.output_size;
  const int steps = response.outputs_size() / outputs;
  std::vector<int> order(outputs);
  for (int t = 0; t < steps; ++t) {
    const float* p = response.outputs().data() + t * outputs;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(
        order.begin(), order.begin() + k, order.end(),
        [p](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    v1::StepTop* step = response.add_step_top();
    for (uint32_t j = 0; j < k; ++j) {
      v1::ClassScore* score = step->add_top();
      score->set_index(order[j]);
      if (!config.labels.empty()) score->set_label(config.labels[order[j]]);
      score->set_probability(p[order[j]]);
    }
  }
}

}  // namespace

std::string ChunkDigest(const v1::RegressRequest& request) {
  const std::string steps = absl::StrCat(request.steps());
  const std::string_view values(
      reinterpret_cast<const char*>(request.values().data()),
      request.values_size() * sizeof(float));
  if (request.token_ids().empty()) {
    return sessions::Sha256Hex(
        {steps, request.reset_state() ? "reset" : "", values});
  }
  const std::string_view tokens(
      reinterpret_cast<const char*>(request.token_ids().data()),
      request.token_ids_size() * sizeof(int64_t));
  return sessions::Sha256Hex(
      {steps, request.reset_state() ? "reset" : "", values, "tokens", tokens});
}

absl::StatusOr<PendingChunk> PendingChunk::Prepare(
    const v1::RegressRequest& request, const sessions::AttachedSession& session,
    const model::ModelConfig& config, v1::RegressResponse& response) {
  const sessions::SessionRecord& r = session.record;
  PendingChunk chunk;
  chunk.from_ = r.next_step;
  chunk.digest_ = ChunkDigest(request);
  chunk.top_k_ = std::min<uint32_t>(request.top_k(),
                                    static_cast<uint32_t>(config.output_size));
  if (request.has_expected_first_step() &&
      request.expected_first_step() != r.next_step) {
    // The last applied chunk, sent again unchanged from where it was sent:
    // its answer was lost on the way, and is sent again.
    const bool retry = !r.last_digest.empty() &&
                       request.expected_first_step() == r.last_from &&
                       chunk.digest_ == r.last_digest;
    if (!retry) {
      return sessions::PositionMismatch(r.next_step,
                                        request.expected_first_step());
    }
    chunk.kind_ = Kind::kReplay;
    chunk.first_step_ = r.next_step - r.last_steps;
    chunk.steps_ = r.last_steps;
    response.mutable_outputs()->Assign(r.last_answer.begin(),
                                       r.last_answer.end());
    response.set_replayed(true);
    return chunk;
  }
  chunk.steps_ = request.steps();
  chunk.reset_ = request.reset_state();
  chunk.end_session_ = request.end_session();
  chunk.first_step_ = chunk.reset_ ? 0 : chunk.from_;
  chunk.state_.assign(r.state.size(), 0.0f);
  if (chunk.steps_ > 0) {
    chunk.kind_ = Kind::kRun;
  } else if (r.generation == 0 || chunk.reset_ || chunk.end_session_) {
    chunk.kind_ = Kind::kCommit;
  } else {
    chunk.kind_ = Kind::kRead;
  }
  response.mutable_outputs()->Resize(
      static_cast<int>(chunk.steps_) * config.output_size, 0.0f);
  return chunk;
}

engine::RegressItem PendingChunk::Item(const v1::RegressRequest& request,
                                       const sessions::AttachedSession& session,
                                       v1::RegressResponse& response) {
  engine::RegressItem item;
  item.steps = static_cast<int>(steps_);
  item.inputs = {request.values().data(),
                 static_cast<size_t>(request.values_size())};
  item.tokens = {request.token_ids().data(),
                 static_cast<size_t>(request.token_ids_size())};
  // A reset chunk starts from zeros: an empty state_in.
  if (!reset_) item.state_in = session.record.state;
  item.state_out = state_;
  item.outputs = {response.mutable_outputs()->mutable_data(),
                  static_cast<size_t>(response.outputs_size())};
  return item;
}

sessions::SessionCommit PendingChunk::Commit(
    const sessions::AttachedSession& session,
    const v1::RegressResponse& response) const {
  const sessions::SessionRecord& r = session.record;
  sessions::SessionCommit c;
  c.key = session.key;
  c.generation = r.generation;
  c.from_step = from_;
  c.model = r.model;
  c.model_version = r.model_version;
  c.owner = r.owner;
  c.next_step = first_step_ + steps_;
  // Without steps the state is as it was, or zeros after a reset (state_).
  c.state = steps_ > 0 || reset_ ? std::span<const float>(state_)
                                 : std::span<const float>(r.state);
  c.steps = steps_;
  c.digest = digest_;
  c.answer = {response.outputs().data(),
              static_cast<size_t>(response.outputs_size())};
  c.end_session = end_session_;
  return c;
}

void PendingChunk::Applied(sessions::AttachedSession& session,
                           const v1::RegressResponse& response) {
  sessions::SessionRecord& r = session.record;
  if (r.generation == 0) r.generation = 1;  // Created by this commit.
  if (steps_ > 0 || reset_) r.state = std::move(state_);
  r.next_step = first_step_ + steps_;
  r.last_from = from_;
  r.last_steps = steps_;
  r.last_digest = std::move(digest_);
  r.last_answer.assign(response.outputs().begin(), response.outputs().end());
}

void PendingChunk::Describe(const sessions::AttachedSession& session,
                            const model::ModelConfig& config, bool with_token,
                            v1::RegressResponse& response) const {
  if (with_token) response.set_session_token(session.token);
  response.set_model_version(config.version);
  response.set_first_step(first_step_);
  response.set_steps(steps_);
  response.set_session_ended(end_session_);
  if (top_k_ > 0) AddStepTops(config, top_k_, response);
}

namespace {

// The checks a request of `model` must pass before it takes anything over.
absl::Status CheckChunk(const ServingState& state,
                        const v1::RegressRequest& request,
                        const runtime::ModelRuntime& model) {
  RETURN_IF_ERROR(CheckTask(model.config(), model::Task::kRegression));
  return ValidateChunk(request, model.config(), state.limits);
}

}  // namespace

absl::StatusOr<AttachedModelSession> AttachModelSession(
    const ServingState& state, const v1::RegressRequest& request,
    const std::string& caller) {
  ASSIGN_OR_RETURN(const ModelSet* set, state.FindModelSet(request.model()));
  AttachedModelSession attached;
  const bool resume = !request.session_token().empty();
  if (!resume || !request.model_version().empty()) {
    if (resume) {
      // The session's own version may be draining: it still serves it.
      attached.model = set->Find(request.model_version(), /*for_session=*/true);
    }
    if (attached.model == nullptr) {
      ASSIGN_OR_RETURN(
          attached.model,
          state.FindModel(request.model(), request.model_version()));
    }
    RETURN_IF_ERROR(CheckChunk(state, request, *attached.model));
    const model::ModelConfig& config = attached.model->config();
    if (!resume) {
      ASSIGN_OR_RETURN(
          attached.session,
          state.sessions->Create(config.name, config.state_size(), caller));
      attached.session.record.model_version = config.version;
      return attached;
    }
    ASSIGN_OR_RETURN(
        attached.session,
        state.sessions->TakeOver(request.session_token(), config.name, caller));
    const std::string& version = attached.session.record.model_version;
    if (!version.empty() && version != config.version) {
      return absl::InvalidArgumentError(
          absl::StrCat("model_version: the session runs on version \"", version,
                       "\" of model \"", config.name, "\", not \"",
                       request.model_version().substr(0, 128),
                       "\"; leave model_version empty or name that version"));
    }
    return attached;
  }
  // A session resumed without a version runs on the one it started on.
  // A request that no version held could take is refused before the
  // session is taken over, so that it takes nothing over.
  absl::Status checked = absl::NotFoundError(
      absl::StrCat("model: model \"", set->name(), "\" has no version loaded"));
  for (const VersionInfo& v : set->Versions()) {
    if (v.runtime == nullptr) continue;
    checked = CheckChunk(state, request, *v.runtime);
    if (checked.ok()) break;
  }
  RETURN_IF_ERROR(checked);
  ASSIGN_OR_RETURN(
      attached.session,
      state.sessions->TakeOver(request.session_token(), set->name(), caller));
  const std::string& version = attached.session.record.model_version;
  // A session stored before versions were recorded runs on the newest.
  attached.model = version.empty() ? set->Newest()
                                   : set->Find(version, /*for_session=*/true);
  if (attached.model == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("model_version: the session runs on version \"", version,
                     "\" of model \"", set->name(),
                     "\", which this server has not loaded (loaded versions: ",
                     set->ReadyList(), "); resume it on a server that has"));
  }
  RETURN_IF_ERROR(CheckChunk(state, request, *attached.model));
  return attached;
}

absl::Status CommitNow(const ServingState& state, const PendingChunk& chunk,
                       const sessions::AttachedSession& session,
                       const v1::RegressResponse& response) {
  const sessions::SessionCommit commit = chunk.Commit(session, response);
  return state.sessions->CommitAll({&commit, 1})[0];
}

void NoteReplay(const ServingState& state, const model::ModelConfig& config) {
  if (state.metrics != nullptr) {
    state.metrics->OnReplayed(config.name, config.version);
  }
}

}  // namespace rnnserve::service
