#include "server/sessions/memory_sessions.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/sessions/limits_messages.h"

namespace rnnserve::sessions {

MemorySessions::MemorySessions(SessionLimits limits, const Clock& clock,
                               SessionObserver* observer)
    : limits_(limits), clock_(clock), observer_(observer) {}

absl::Status MemorySessions::RoomFor(const std::string& owner) const {
  if (static_cast<int64_t>(sessions_.size()) >= limits_.max_sessions) {
    return StoreFull(limits_.max_sessions, /*shared=*/false);
  }
  if (owner.empty() || limits_.max_sessions_per_owner <= 0) {
    return absl::OkStatus();
  }
  auto it = per_owner_.find(owner);
  if (it != per_owner_.end() && it->second >= limits_.max_sessions_per_owner) {
    return QuotaFull(limits_.max_sessions_per_owner);
  }
  return absl::OkStatus();
}

void MemorySessions::EraseLocked(Map::iterator it) {
  const std::string& owner = it->second.record.owner;
  if (!owner.empty()) {
    auto count = per_owner_.find(owner);
    if (--count->second == 0) per_owner_.erase(count);
  }
  sessions_.erase(it);
}

std::vector<MemorySessions::ModelVersion> MemorySessions::ReapLocked(
    absl::Time now) {
  std::vector<ModelVersion> models;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second.expires <= now) {
      models.push_back(
          {it->second.record.model, it->second.record.model_version});
      EraseLocked(it++);
    } else {
      ++it;
    }
  }
  return models;
}

void MemorySessions::NotifyExpired(const std::vector<ModelVersion>& models) {
  if (observer_ == nullptr) return;
  for (const auto& [model, version] : models) {
    observer_->OnExpired(model, version);
  }
}

absl::StatusOr<AttachedSession> MemorySessions::CreateWithToken(
    const std::string& token, const std::string& model, size_t state_size,
    const std::string& owner) {
  std::vector<ModelVersion> expired;
  absl::Status room;
  {
    absl::MutexLock lock(&mu_);
    // Expired sessions must not keep live ones out.
    if (!RoomFor(owner).ok()) expired = ReapLocked(clock_.Now());
    room = RoomFor(owner);
  }
  NotifyExpired(expired);
  if (!room.ok()) {
    // The store learns the session's version at its first commit.
    if (observer_ != nullptr) observer_->OnRefused(model, "");
    return room;
  }
  return Unstored(token, token, model, state_size, owner);
}

absl::StatusOr<AttachedSession> MemorySessions::TakeOver(
    const std::string& token, const std::string& model,
    const std::string& owner) {
  AttachedSession session;
  bool expired = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(token);
    // Nothing about a session is told to a caller that is not its owner.
    if (it == sessions_.end() || it->second.record.owner != owner) {
      return NoSuchSession();
    }
    Entry& entry = it->second;
    const absl::Time now = clock_.Now();
    if (entry.expires <= now) {
      session.record.model = entry.record.model;
      session.record.model_version = entry.record.model_version;
      EraseLocked(it);
      expired = true;
    } else if (entry.record.model != model) {
      return absl::InvalidArgumentError(
          absl::StrCat("session_token: the session belongs to model \"",
                       entry.record.model, "\", not \"", model, "\""));
    } else {
      ++entry.record.generation;
      entry.expires = now + limits_.idle_ttl;
      session.token = token;
      session.key = token;
      session.record = entry.record;
    }
  }
  if (expired) {
    NotifyExpired({{session.record.model, session.record.model_version}});
    return NoSuchSession();
  }
  if (observer_ != nullptr) {
    observer_->OnResumed(model, session.record.model_version);
  }
  return session;
}

absl::Status MemorySessions::CommitLocked(const SessionCommit& c,
                                          absl::Time now, Event& event,
                                          std::string& version) {
  version = c.model_version;
  auto it = sessions_.find(c.key);
  if (it != sessions_.end() && it->second.expires <= now) {
    EraseLocked(it);
    it = sessions_.end();
  }
  if (c.generation == 0) {
    // A new session's first chunk. Its token is new, so it cannot be held.
    if (it != sessions_.end()) return TakenOver();
    if (c.end_session) return absl::OkStatus();  // Ended as it began.
    if (absl::Status room = RoomFor(c.owner); !room.ok()) {
      event = Event::kRefused;
      return room;
    }
    Entry& entry = sessions_[c.key];
    entry.record.model = c.model;
    entry.record.model_version = c.model_version;
    entry.record.owner = c.owner;
    entry.record.generation = 1;
    if (!c.owner.empty()) ++per_owner_[c.owner];
    it = sessions_.find(c.key);
    event = Event::kCreated;
  } else if (it == sessions_.end()) {
    return NoSuchSession();
  } else if (it->second.record.generation != c.generation) {
    version = it->second.record.model_version;
    event = Event::kTakenOver;
    return TakenOver();
  } else if (it->second.record.next_step != c.from_step) {
    // Only one call holds a generation, and it commits in order.
    return absl::InternalError(absl::StrCat(
        "session store: the session moved from step ", c.from_step, " to ",
        it->second.record.next_step, " under its own call"));
  }
  if (c.end_session) {
    version = it->second.record.model_version;
    EraseLocked(it);
    event = Event::kEnded;
    return absl::OkStatus();
  }
  SessionRecord& r = it->second.record;
  r.next_step = c.next_step;
  r.state.assign(c.state.begin(), c.state.end());
  r.last_from = c.from_step;
  r.last_steps = c.steps;
  r.last_digest = c.digest;
  r.last_answer.assign(c.answer.begin(), c.answer.end());
  it->second.expires = now + limits_.idle_ttl;
  return absl::OkStatus();
}

std::vector<absl::Status> MemorySessions::CommitAll(
    std::span<const SessionCommit> commits) {
  std::vector<absl::Status> statuses;
  std::vector<Event> events(commits.size(), Event::kNone);
  std::vector<std::string> versions(commits.size());
  statuses.reserve(commits.size());
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    for (size_t i = 0; i < commits.size(); ++i) {
      statuses.push_back(CommitLocked(commits[i], now, events[i], versions[i]));
    }
  }
  if (observer_ == nullptr) return statuses;
  for (size_t i = 0; i < commits.size(); ++i) {
    const std::string& model = commits[i].model;
    const std::string& version = versions[i];
    switch (events[i]) {
      case Event::kCreated:
        observer_->OnCreated(model, version);
        break;
      case Event::kEnded:
        observer_->OnEnded(model, version);
        break;
      case Event::kRefused:
        observer_->OnRefused(model, version);
        break;
      case Event::kTakenOver:
        observer_->OnTakenOver(model, version);
        break;
      case Event::kNone:
        break;
    }
  }
  return statuses;
}

absl::StatusOr<int64_t> MemorySessions::Count() {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(sessions_.size());
}

absl::StatusOr<std::map<std::string, int64_t>> MemorySessions::CountByVersion(
    const std::string& model) {
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  std::map<std::string, int64_t> counts;
  for (const auto& [key, entry] : sessions_) {
    // An expired session not yet reaped holds nothing any more.
    if (entry.expires > now && entry.record.model == model) {
      ++counts[entry.record.model_version];
    }
  }
  return counts;
}

int MemorySessions::Reap() {
  std::vector<ModelVersion> expired;
  {
    absl::MutexLock lock(&mu_);
    expired = ReapLocked(clock_.Now());
  }
  NotifyExpired(expired);
  return static_cast<int>(expired.size());
}

}  // namespace rnnserve::sessions
