#include "server/sessions/session_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/sessions/token.h"

namespace rnnserve::sessions {

Lease::Lease(Lease&& other) noexcept
    : store_(std::exchange(other.store_, nullptr)),
      session_(std::move(other.session_)) {}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    store_ = std::exchange(other.store_, nullptr);
    session_ = std::move(other.session_);
  }
  return *this;
}

Lease::~Lease() { Release(); }

void Lease::End() {
  if (session_ == nullptr) return;
  absl::MutexLock lock(&store_->mu_);
  session_->ended = true;
}

void Lease::Release() {
  if (session_ == nullptr) return;
  store_->Detach(*session_);
  session_.reset();
  store_ = nullptr;
}

SessionStore::SessionStore(Options options, const Clock& clock,
                           SessionObserver* observer)
    : options_(options), clock_(clock), observer_(observer) {}

SessionStore::~SessionStore() = default;

bool SessionStore::Expired(const Session& session, absl::Time now) const {
  return !session.attached && now - session.last_active >= options_.idle_ttl;
}

std::vector<std::string> SessionStore::ReapLocked(absl::Time now) {
  std::vector<std::string> models;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (Expired(*it->second, now)) {
      models.push_back(it->second->model);
      sessions_.erase(it++);
    } else {
      ++it;
    }
  }
  return models;
}

void SessionStore::NotifyExpired(const std::vector<std::string>& models) {
  if (observer_ == nullptr) return;
  for (const std::string& model : models) observer_->OnExpired(model);
}

absl::StatusOr<Lease> SessionStore::Create(const std::string& model,
                                           size_t state_size) {
  ASSIGN_OR_RETURN(std::string token, NewToken());
  auto session = std::make_shared<Session>(token, model, state_size);
  session->attached = true;
  std::vector<std::string> expired;
  bool full = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    session->last_active = now;
    if (static_cast<int64_t>(sessions_.size()) >= options_.max_sessions) {
      // Expired sessions must not keep live ones out.
      expired = ReapLocked(now);
    }
    full = static_cast<int64_t>(sessions_.size()) >= options_.max_sessions;
    if (!full) sessions_.emplace(token, session);
  }
  NotifyExpired(expired);
  if (full) {
    if (observer_ != nullptr) observer_->OnRefused(model);
    return absl::ResourceExhaustedError(
        absl::StrCat("the server holds its maximum of ", options_.max_sessions,
                     " sessions; end unused sessions or retry later"));
  }
  if (observer_ != nullptr) observer_->OnCreated(model);
  return Lease(this, std::move(session));
}

absl::StatusOr<Lease> SessionStore::Resume(const std::string& token,
                                           const std::string& model) {
  std::shared_ptr<Session> session;
  bool expired = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(token);
    if (it != sessions_.end() && !it->second->ended) {
      if (Expired(*it->second, clock_.Now())) {
        session = std::move(it->second);
        sessions_.erase(it);
        expired = true;
      } else if (it->second->model != model) {
        return absl::InvalidArgumentError(
            absl::StrCat("session_token: the session belongs to model \"",
                         it->second->model, "\", not \"", model, "\""));
      } else if (it->second->attached) {
        return absl::FailedPreconditionError(
            "session_token: the session is attached to another call; a "
            "session serves one stream at a time");
      } else {
        session = it->second;
        session->attached = true;
        session->last_active = clock_.Now();
      }
    }
  }
  if (expired) {
    NotifyExpired({session->model});
    session.reset();
  }
  if (session == nullptr) {
    return absl::NotFoundError(
        "session_token: no such session (unknown, ended or expired)");
  }
  if (observer_ != nullptr) observer_->OnResumed(session->model);
  return Lease(this, std::move(session));
}

void SessionStore::Detach(Session& session) {
  bool ended = false;
  {
    absl::MutexLock lock(&mu_);
    session.attached = false;
    session.last_active = clock_.Now();
    if (session.ended) {
      ended = sessions_.erase(session.token) > 0;
    }
  }
  if (ended && observer_ != nullptr) observer_->OnEnded(session.model);
}

int SessionStore::Reap() {
  std::vector<std::string> expired;
  {
    absl::MutexLock lock(&mu_);
    expired = ReapLocked(clock_.Now());
  }
  NotifyExpired(expired);
  return static_cast<int>(expired.size());
}

int64_t SessionStore::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(sessions_.size());
}

std::string TokenForLog(const std::string& token) {
  return absl::StrCat(token.substr(0, 6), "…");
}

}  // namespace rnnserve::sessions
