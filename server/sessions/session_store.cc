#include "server/sessions/session_store.h"

#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/sessions/limits_messages.h"
#include "server/sessions/token.h"

namespace rnnserve::sessions {

absl::StatusOr<AttachedSession> SessionStore::Create(const std::string& model,
                                                     size_t state_size,
                                                     const std::string& owner) {
  ASSIGN_OR_RETURN(std::string token, NewToken());
  return CreateWithToken(token, model, state_size, owner);
}

absl::StatusOr<int64_t> SessionStore::CountOn(const std::string& model,
                                              const std::string& version) {
  ASSIGN_OR_RETURN(const auto counts, CountByVersion(model));
  auto it = counts.find(version);
  return it == counts.end() ? 0 : it->second;
}

AttachedSession SessionStore::Unstored(const std::string& token,
                                       std::string key,
                                       const std::string& model,
                                       size_t state_size,
                                       const std::string& owner) {
  AttachedSession session;
  session.token = token;
  session.key = std::move(key);
  session.record.model = model;
  session.record.owner = owner;
  session.record.state.assign(state_size, 0.0f);
  return session;
}

absl::Status PositionMismatch(uint64_t position, uint64_t expected) {
  absl::Status status = absl::FailedPreconditionError(absl::StrCat(
      "expected_first_step: the session is at step ", position, ", not ",
      expected,
      "; resend from there (the last chunk applied is answered again only "
      "when sent from where it was sent before, unchanged)"));
  status.SetPayload(kPositionPayload, absl::Cord(absl::StrCat(position)));
  return status;
}

std::optional<uint64_t> PositionOf(const absl::Status& status) {
  auto payload = status.GetPayload(kPositionPayload);
  uint64_t position = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &position)) {
    return std::nullopt;
  }
  return position;
}

absl::Status TakenOver() {
  return absl::AbortedError(
      "session taken over: another call presented this session's token; "
      "this call's chunk was not applied");
}

absl::Status NoSuchSession() {
  return absl::NotFoundError(
      "session_token: no such session (unknown, ended or expired)");
}

absl::Status StoreFull(int64_t max_sessions, bool shared) {
  return absl::ResourceExhaustedError(
      absl::StrCat(shared ? "the session store holds its maximum of "
                          : "the server holds its maximum of ",
                   max_sessions,
                   shared ? " sessions (--max-sessions, for the whole cluster)"
                          : " sessions (--max-sessions)",
                   "; end unused sessions or retry later"));
}

absl::Status QuotaFull(int64_t max_sessions_per_owner) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "this bearer token holds its quota of ", max_sessions_per_owner,
      " sessions (--max-sessions-per-token); end unused sessions or retry "
      "later"));
}

std::string TokenForLog(const std::string& token) {
  return absl::StrCat(token.substr(0, 6), "…");
}

}  // namespace rnnserve::sessions
