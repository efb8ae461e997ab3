// Streaming sessions: the recurrent state a client carries from chunk to
// chunk and from one stream to the next, found by an unguessable token and
// bound to the caller that created it.
#ifndef RNNSERVE_SERVER_SESSIONS_SESSION_STORE_H_
#define RNNSERVE_SERVER_SESSIONS_SESSION_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/common/clock.h"
#include "server/sessions/session_observer.h"

namespace rnnserve::sessions {

// One session's state. Only the holder of its Lease touches `state` and
// `next_step`, so they need no lock; the store's own bookkeeping of the
// session (attached, ended, idle time, owner) lives inside the store, under
// its mutex.
struct Session {
  Session(std::string token, std::string model, size_t state_size)
      : token(std::move(token)),
        model(std::move(model)),
        state(state_size, 0.0f) {}

  const std::string token;
  const std::string model;
  std::vector<float> state;  // The model's state layout; zeros at start.
  uint64_t next_step = 0;    // Steps run since start or the last reset.
};

class SessionStore;

// Exclusive use of one session by one call. Move-only. A lease from
// Create() holds a provisional session: it exists for nobody else (Resume
// does not find it, the observer has not counted it) until Commit(); if
// the lease goes without a commit, the session is removed as if it had
// never been. When a lease goes, a committed session is detached and its
// idle time starts (or it is removed, if End() was called). Not
// thread-safe: one call uses it at a time.
class Lease {
 public:
  Lease() = default;
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&& other) noexcept;
  ~Lease();

  explicit operator bool() const { return session_ != nullptr; }
  Session& operator*() const { return *session_; }
  Session* operator->() const { return session_.get(); }

  // The session's first chunk succeeded: a provisional session becomes a
  // real one, resumable by its token and counted as created. No-op for a
  // resumed or already committed session.
  void Commit();
  // Ends the session: its token stops working now; the state is dropped
  // when the lease goes.
  void End();
  // Detaches now (as the destructor does).
  void Release();

 private:
  friend class SessionStore;
  Lease(SessionStore* store, std::shared_ptr<Session> session)
      : store_(store), session_(std::move(session)) {}

  SessionStore* store_ = nullptr;
  std::shared_ptr<Session> session_;
};

// Issues and keeps sessions. A session is attached to at most one call at a
// time; it expires after idle_ttl detached; the store holds at most
// max_sessions, and at most max_sessions_per_owner of one owner, and
// refuses new ones beyond that rather than evict any. Provisional sessions
// (created, first chunk not yet committed) count against both limits while
// their lease lives. Thread-safe.
class SessionStore {
 public:
  struct Options {
    // A detached session is dropped after this long unused. Default 10 min.
    absl::Duration idle_ttl = absl::Minutes(10);
    // Most sessions held at once, attached or not. Default 10000.
    int64_t max_sessions = 10000;
    // Most sessions held at once by one owner (one bearer token); 0: no
    // limit. Sessions without an owner (authentication off) are not
    // counted. Default 1000.
    int64_t max_sessions_per_owner = 1000;
  };

  // `clock` and `observer` (may be null) must outlive the store.
  SessionStore(Options options, const Clock& clock,
               SessionObserver* observer = nullptr);
  ~SessionStore();

  // A new provisional session of `model` with `state_size` zeros, attached
  // to the caller (see Lease::Commit). `owner` identifies the caller (the
  // digest of its bearer token, never the token; empty without
  // authentication): only the same owner may resume the session.
  // RESOURCE_EXHAUSTED when the store, or the owner's quota, is full of
  // live sessions.
  absl::StatusOr<Lease> Create(const std::string& model, size_t state_size,
                               const std::string& owner = "");

  // Attaches an existing session. NOT_FOUND for an unknown, ended, expired
  // or provisional token, and for a session of another owner (the same
  // message: a token of someone else's reveals nothing); INVALID_ARGUMENT
  // when it belongs to another model; FAILED_PRECONDITION when another call
  // holds it.
  absl::StatusOr<Lease> Resume(const std::string& token,
                               const std::string& model,
                               const std::string& owner = "");

  // Drops sessions idle past the TTL; returns how many.
  int Reap();

  // Sessions held, provisional ones included.
  int64_t size() const;
  const Options& options() const { return options_; }

 private:
  friend class Lease;
  // The store's bookkeeping of one session.
  struct Entry {
    std::shared_ptr<Session> session;
    std::string owner;
    bool committed = false;  // Its first chunk succeeded.
    bool attached = false;
    bool ended = false;
    absl::Time last_active;
  };

  void Commit(const Session& session);
  void End(const Session& session);
  void Detach(const Session& session);
  bool Expired(const Entry& entry, absl::Time now) const;
  // The entry of `session`, which its lease keeps in the map.
  Entry& EntryOf(const Session& session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the entry at `it` and its count against its owner.
  void EraseLocked(absl::flat_hash_map<std::string, Entry>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes expired sessions; returns their models, for the observer.
  std::vector<std::string> ReapLocked(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why a new session of `owner` may not be held now, or OK.
  absl::Status RoomFor(const std::string& owner) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyExpired(const std::vector<std::string>& models);

  const Options options_;
  const Clock& clock_;
  SessionObserver* const observer_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> sessions_ ABSL_GUARDED_BY(mu_);
  // Sessions held per non-empty owner; owners holding none are absent.
  absl::flat_hash_map<std::string, int64_t> per_owner_ ABSL_GUARDED_BY(mu_);
};

// A short, safe-to-log form of a token: its first characters only.
std::string TokenForLog(const std::string& token);

}  // namespace rnnserve::sessions

#endif  // RNNSERVE_SERVER_SESSIONS_SESSION_STORE_H_
