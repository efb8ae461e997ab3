// Sessions in the server's own memory: the default store, for one replica.
// They live as long as the process; a restart loses them.
#ifndef RNNSERVE_SERVER_SESSIONS_MEMORY_SESSIONS_H_
#define RNNSERVE_SERVER_SESSIONS_MEMORY_SESSIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "server/common/clock.h"
#include "server/sessions/session_observer.h"
#include "server/sessions/session_store.h"

namespace rnnserve::sessions {

// Keeps the rules of SessionStore under one mutex. The key of a session is
// its token (it never leaves the process). Expired sessions are refused at
// once and dropped by Reap(). Thread-safe.
class MemorySessions final : public SessionStore {
 public:
  // `clock` and `observer` (may be null) must outlive the store.
  MemorySessions(SessionLimits limits, const Clock& clock,
                 SessionObserver* observer = nullptr);

  std::string_view backend() const override { return "memory"; }
  absl::StatusOr<AttachedSession> CreateWithToken(
      const std::string& token, const std::string& model, size_t state_size,
      const std::string& owner) override;
  absl::StatusOr<AttachedSession> TakeOver(const std::string& token,
                                           const std::string& model,
                                           const std::string& owner) override;
  std::vector<absl::Status> CommitAll(
      std::span<const SessionCommit> commits) override;
  absl::Status Probe() override { return absl::OkStatus(); }
  absl::StatusOr<int64_t> Count() override;
  absl::StatusOr<std::map<std::string, int64_t>> CountByVersion(
      const std::string& model) override;
  int Reap() override;

 private:
  struct Entry {
    SessionRecord record;
    absl::Time expires;
  };
  using Map = absl::flat_hash_map<std::string, Entry>;

  // One commit; `event` is set to what to tell the observer, and `version`
  // to the session's model version for it.
  enum class Event { kNone, kCreated, kEnded, kRefused, kTakenOver };
  absl::Status CommitLocked(const SessionCommit& commit, absl::Time now,
                            Event& event, std::string& version)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why a new session of `owner` may not be held now, or OK.
  absl::Status RoomFor(const std::string& owner) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(Map::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A session's model and model version, for the observer.
  struct ModelVersion {
    std::string model;
    std::string version;
  };
  // Removes expired sessions; returns their models, for the observer.
  std::vector<ModelVersion> ReapLocked(absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyExpired(const std::vector<ModelVersion>& models);

  const SessionLimits limits_;
  const Clock& clock_;
  SessionObserver* const observer_;
  mutable absl::Mutex mu_;
  Map sessions_ ABSL_GUARDED_BY(mu_);
  // Sessions held per non-empty owner; owners holding none are absent.
  absl::flat_hash_map<std::string, int64_t> per_owner_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rnnserve::sessions

#endif  // RNNSERVE_SERVER_SESSIONS_MEMORY_SESSIONS_H_
