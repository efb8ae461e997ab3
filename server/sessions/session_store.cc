#include "server/sessions/session_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/sessions/token.h"

namespace rnnserve::sessions {
namespace {

// One message for every token the caller may not use, so that a token of
// another owner's is indistinguishable from a made-up one.
absl::Status NoSuchSession() {
  return absl::NotFoundError(
      "session_token: no such session (unknown, ended or expired)");
}

}  // namespace

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

void Lease::Commit() {
  if (session_ != nullptr) store_->Commit(*session_);
}

void Lease::End() {
  if (session_ != nullptr) store_->End(*session_);
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

bool SessionStore::Expired(const Entry& entry, absl::Time now) const {
  // Provisional sessions are always attached, so never expire.
  return !entry.attached && now - entry.last_active >= options_.idle_ttl;
}

SessionStore::Entry& SessionStore::EntryOf(const Session& session) {
  // A leased session is removed only by its lease, so it is there.
  return sessions_.find(session.token)->second;
}

void SessionStore::EraseLocked(
    absl::flat_hash_map<std::string, Entry>::iterator it) {
  if (!it->second.owner.empty()) {
    auto owner = per_owner_.find(it->second.owner);
    if (--owner->second == 0) per_owner_.erase(owner);
  }
  sessions_.erase(it);
}

std::vector<std::string> SessionStore::ReapLocked(absl::Time now) {
  std::vector<std::string> models;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (Expired(it->second, now)) {
      models.push_back(it->second.session->model);
      EraseLocked(it++);
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

absl::Status SessionStore::RoomFor(const std::string& owner) const {
  if (static_cast<int64_t>(sessions_.size()) >= options_.max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the server holds its maximum of ", options_.max_sessions,
        " sessions (--max-sessions); end unused sessions or retry later"));
  }
  if (owner.empty() || options_.max_sessions_per_owner <= 0) {
    return absl::OkStatus();
  }
  auto it = per_owner_.find(owner);
  if (it != per_owner_.end() && it->second >= options_.max_sessions_per_owner) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this bearer token holds its quota of ",
        options_.max_sessions_per_owner,
        " sessions (--max-sessions-per-token); end unused sessions or retry "
        "later"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Lease> SessionStore::Create(const std::string& model,
                                           size_t state_size,
                                           const std::string& owner) {
  ASSIGN_OR_RETURN(std::string token, NewToken());
  auto session = std::make_shared<Session>(token, model, state_size);
  std::vector<std::string> expired;
  absl::Status room;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    // Expired sessions must not keep live ones out.
    if (!RoomFor(owner).ok()) expired = ReapLocked(now);
    room = RoomFor(owner);
    if (room.ok()) {
      Entry& entry = sessions_[token];
      entry.session = session;
      entry.owner = owner;
      entry.attached = true;
      entry.last_active = now;
      if (!owner.empty()) ++per_owner_[owner];
    }
  }
  NotifyExpired(expired);
  if (!room.ok()) {
    if (observer_ != nullptr) observer_->OnRefused(model);
    return room;
  }
  return Lease(this, std::move(session));
}

absl::StatusOr<Lease> SessionStore::Resume(const std::string& token,
                                           const std::string& model,
                                           const std::string& owner) {
  std::shared_ptr<Session> session;
  bool expired = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(token);
    // Nothing about a session is told to a caller that is not its owner.
    if (it == sessions_.end() || !it->second.committed || it->second.ended ||
        it->second.owner != owner) {
      return NoSuchSession();
    }
    Entry& entry = it->second;
    session = entry.session;
    if (Expired(entry, clock_.Now())) {
      EraseLocked(it);
      expired = true;
    } else if (session->model != model) {
      return absl::InvalidArgumentError(
          absl::StrCat("session_token: the session belongs to model \"",
                       session->model, "\", not \"", model, "\""));
    } else if (entry.attached) {
      return absl::FailedPreconditionError(
          "session_token: the session is attached to another call; a "
          "session serves one stream at a time");
    } else {
      entry.attached = true;
      entry.last_active = clock_.Now();
    }
  }
  if (expired) {
    NotifyExpired({session->model});
    return NoSuchSession();
  }
  if (observer_ != nullptr) observer_->OnResumed(session->model);
  return Lease(this, std::move(session));
}

void SessionStore::Commit(const Session& session) {
  {
    absl::MutexLock lock(&mu_);
    Entry& entry = EntryOf(session);
    if (entry.committed) return;
    entry.committed = true;
  }
  if (observer_ != nullptr) observer_->OnCreated(session.model);
}

void SessionStore::End(const Session& session) {
  absl::MutexLock lock(&mu_);
  EntryOf(session).ended = true;
}

void SessionStore::Detach(const Session& session) {
  bool ended = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(session.token);
    Entry& entry = it->second;
    if (!entry.committed) {
      // Its first chunk failed: the session never was.
      EraseLocked(it);
      return;
    }
    entry.attached = false;
    entry.last_active = clock_.Now();
    if (entry.ended) {
      EraseLocked(it);
      ended = true;
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
