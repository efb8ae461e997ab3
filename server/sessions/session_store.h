// Streaming sessions: the recurrent state a client carries from chunk to
// chunk and from one stream to the next, found by an unguessable token.
#ifndef RNNSERVE_SERVER_SESSIONS_SESSION_STORE_H_
#define RNNSERVE_SERVER_SESSIONS_SESSION_STORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/common/clock.h"

namespace rnnserve::sessions {

// One session's state. Only the holder of its Lease touches `state` and
// `next_step`, so they need no lock.
struct Session {
  Session(std::string token, std::string model, size_t state_size)
      : token(std::move(token)),
        model(std::move(model)),
        state(state_size, 0.0f) {}

  const std::string token;
  const std::string model;
  std::vector<float> state;  // The model's state layout; zeros at start.
  uint64_t next_step = 0;    // Steps run since start or the last reset.

  // The store's bookkeeping, guarded by its mutex.
  bool attached = false;
  bool ended = false;
  absl::Time last_active;
};

// Told of session events, e.g. to count them. Called without the store's
// lock held; must be thread-safe.
class SessionObserver {
 public:
  virtual ~SessionObserver() = default;
  virtual void OnCreated(const std::string& model) = 0;
  virtual void OnResumed(const std::string& model) = 0;
  virtual void OnExpired(const std::string& model) = 0;
  virtual void OnRefused(const std::string& model) = 0;  // Store full.
  virtual void OnEnded(const std::string& model) = 0;
};

class SessionStore;

// Exclusive use of one session by one call. Move-only; when it goes, the
// session is detached and its idle time starts (or it is removed, if End()
// was called).
class Lease {
 public:
  Lease() = default;
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&& other) noexcept;
  ~Lease();

  explicit operator bool() const { return session_ != nullptr; }
  Session& operator*() const { return *session_; }
  Session* operator->() const { return session_.get(); }

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
// max_sessions, and refuses new ones beyond that rather than evict any.
// Thread-safe.
class SessionStore {
 public:
  struct Options {
    // A detached session is dropped after this long unused. Default 10 min.
    absl::Duration idle_ttl = absl::Minutes(10);
    // Most sessions held at once, attached or not. Default 10000.
    int64_t max_sessions = 10000;
  };

  // `clock` and `observer` (may be null) must outlive the store.
  SessionStore(Options options, const Clock& clock,
               SessionObserver* observer = nullptr);
  ~SessionStore();

  // A new session of `model` with `state_size` zeros, attached to the
  // caller. RESOURCE_EXHAUSTED when the store is full of live sessions.
  absl::StatusOr<Lease> Create(const std::string& model, size_t state_size);

  // Attaches an existing session. NOT_FOUND for an unknown, ended or expired
  // token; INVALID_ARGUMENT when it belongs to another model;
  // FAILED_PRECONDITION when another call holds it.
  absl::StatusOr<Lease> Resume(const std::string& token,
                               const std::string& model);

  // Drops sessions idle past the TTL; returns how many.
  int Reap();

  int64_t size() const;
  const Options& options() const { return options_; }

 private:
  friend class Lease;
  void Detach(Session& session);
  bool Expired(const Session& session, absl::Time now) const;
  // Removes expired sessions; returns their models, for the observer.
  std::vector<std::string> ReapLocked(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyExpired(const std::vector<std::string>& models);

  const Options options_;
  const Clock& clock_;
  SessionObserver* const observer_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Session>> sessions_
      ABSL_GUARDED_BY(mu_);
};

// A short, safe-to-log form of a token: its first characters only.
std::string TokenForLog(const std::string& token);

}  // namespace rnnserve::sessions

#endif  // RNNSERVE_SERVER_SESSIONS_SESSION_STORE_H_
