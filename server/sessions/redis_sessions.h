// Sessions kept in Redis, where every replica finds them: the state after
// the last committed chunk, the step counter, the generation that fences
// commits, and the last chunk's answer for retries. Redis holds the truth;
// nothing is answered from a copy in this process.
//
// Layout (prefix "rnnserve:" by default): a session is the hash
// PREFIX "session:" SHA-256(token), so that a dump of the database or
// MONITOR shows no usable token; the sorted set PREFIX "sessions" holds every
// session key scored by its expiry time, and PREFIX "owner:" OWNER the keys
// of one owner, so that --max-sessions and the per-token quota bound the
// whole cluster. Each operation is one Lua script, atomic in Redis. One
// Redis (or a primary with replicas); not Redis Cluster.
#ifndef RNNSERVE_SERVER_SESSIONS_REDIS_SESSIONS_H_
#define RNNSERVE_SERVER_SESSIONS_REDIS_SESSIONS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/sessions/redis_connection.h"
#include "server/sessions/session_observer.h"
#include "server/sessions/session_store.h"

namespace rnnserve::sessions {

// The Redis key of the session of `token`.
std::string SessionKey(const std::string& prefix, const std::string& token);

// Thread-safe: a pool of connections, one per caller at a time. Every
// operation is one round trip (two more when Redis forgot the scripts), or
// fails with UNAVAILABLE naming Redis.
class RedisSessions final : public SessionStore {
 public:
  struct Options {
    RedisConnection::Options connection;
    SessionLimits limits;
    std::string key_prefix = "rnnserve:";
  };

  // `observer` (may be null) must outlive the store. Connects lazily: a
  // Redis that is down now fails calls, not the construction.
  explicit RedisSessions(Options options, SessionObserver* observer = nullptr);
  ~RedisSessions() override;

  std::string_view backend() const override { return "redis"; }
  bool remote() const override { return true; }
  absl::StatusOr<AttachedSession> CreateWithToken(
      const std::string& token, const std::string& model, size_t state_size,
      const std::string& owner) override;
  absl::StatusOr<AttachedSession> TakeOver(const std::string& token,
                                           const std::string& model,
                                           const std::string& owner) override;
  std::vector<absl::Status> CommitAll(
      std::span<const SessionCommit> commits) override;
  absl::Status Probe() override;
  absl::StatusOr<int64_t> Count() override;
  absl::StatusOr<std::map<std::string, int64_t>> CountByVersion(
      const std::string& model) override;

  const Options& options() const { return options_; }
  // Round trips to Redis so far, successful or not (connecting counts).
  int64_t round_trips() const { return round_trips_.load(); }

 private:
  // Runs `commands` on a pooled connection (loading the scripts again if
  // Redis forgot them); tells the observer how `operation` went. A pooled
  // connection that fails empties the pool, and, when `may_repeat` (running
  // the commands twice does no harm), the commands are run again on a new
  // connection.
  absl::StatusOr<std::vector<RedisReply>> Run(
      std::string_view operation, const std::vector<RedisCommand>& commands,
      bool may_repeat);
  absl::StatusOr<std::vector<RedisReply>> RunOn(
      RedisConnection& c, const std::vector<RedisCommand>& commands);
  // A pooled connection (`reused`), or a new one.
  absl::StatusOr<std::unique_ptr<RedisConnection>> Acquire(bool& reused);
  void Return(std::unique_ptr<RedisConnection> connection);
  std::string OwnerKey(const std::string& owner) const;
  RedisCommand CommitCommand(const SessionCommit& c) const;

  const Options options_;
  SessionObserver* const observer_;
  const std::string ttl_ms_;
  const std::string all_key_;
  const RedisScript attach_;
  const RedisScript create_;  // A first commit.
  const RedisScript commit_;
  const RedisScript count_;
  const RedisScript count_by_version_;
  std::atomic<int64_t> round_trips_{0};
  absl::Mutex mu_;
  std::vector<std::unique_ptr<RedisConnection>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rnnserve::sessions

#endif  // RNNSERVE_SERVER_SESSIONS_REDIS_SESSIONS_H_
