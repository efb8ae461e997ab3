// Sessions kept in Redis, where every replica finds them: the state after
// the last committed chunk, the step counter, the generation that fences
// commits, and the last chunk's answer for retries.
#ifndef RNNSERVE_SERVER_SESSIONS_REDIS_SESSIONS_H_
#define RNNSERVE_SERVER_SESSIONS_REDIS_SESSIONS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/sessions/redis_connection.h"

namespace rnnserve::sessions {

// The Redis key of a session: a prefix and the SHA-256 of its token, so
// that a dump of the database or MONITOR shows no usable token.
std::string SessionKey(const std::string& prefix, const std::string& token);

// A session as Redis holds it.
struct StoredSession {
  std::string model;
  std::string owner;  // Who may attach it ("" when anyone may).
  // Bumped by every attach; a commit made under an older one is refused.
  uint64_t generation = 0;
  uint64_t next_step = 0;
  std::vector<float> state;
  // The last committed chunk: where it started, its steps, a digest of its
  // request and its answer (opaque to the store).
  uint64_t last_first_step = 0;
  uint32_t last_steps = 0;
  std::string last_digest;
  std::string last_answer;
};

// One chunk's result, to be committed if nobody moved the session since the
// chunk read it.
struct SessionCommit {
  std::string key;
  // The generation the chunk's call attached with; 0 creates the session
  // (its first chunk), which then has generation 1.
  uint64_t generation = 0;
  // The step the chunk started from: the session must still be there.
  uint64_t from_step = 0;
  StoredSession after;  // model and owner are read only on creation.
};

enum class CommitOutcome {
  kCommitted,
  kTakenOver,  // Another call attached since: the chunk must not count.
  kGone,       // Ended, expired, or lost with a Redis without persistence.
  kMoved,      // Same generation but another position: a bug, reported.
  kRefused,    // Redis refused to write it (e.g. out of memory): not made.
};

// Thread-safe: a pool of connections, one per caller at a time. Every call
// is one round trip, or fails with UNAVAILABLE naming Redis; it never
// answers from a cache.
class RedisSessions {
 public:
  struct Options {
    RedisConnection::Options connection;
    // Redis expires a session this long after its last attach or commit.
    absl::Duration idle_ttl = absl::Minutes(10);
    std::string key_prefix = "rnnserve:session:";
  };

  explicit RedisSessions(Options options);
  ~RedisSessions();

  // Attaches the session at `key` for a new call: bumps its generation
  // (the previous holder's commits are refused from now on) and refreshes
  // its expiry. NOT_FOUND when there is none, or it belongs to another
  // owner (the same answer, so that it reveals nothing); INVALID_ARGUMENT
  // when it belongs to another model.
  absl::StatusOr<StoredSession> TakeOver(const std::string& key,
                                         const std::string& model,
                                         const std::string& owner);

  // Reads the session without attaching it.
  absl::StatusOr<StoredSession> Peek(const std::string& key,
                                     const std::string& model,
                                     const std::string& owner);

  // Commits every chunk in one round trip; one outcome per commit, in
  // order. UNAVAILABLE (for the lot) when the connection fails: then which
  // of them were committed is unknown, so none may be answered as done (a
  // client's retry finds out: a committed chunk is answered again from the
  // stored answer).
  absl::StatusOr<std::vector<CommitOutcome>> CommitAll(
      std::span<const SessionCommit> commits);

  // Deletes the session if `generation` still holds it; false otherwise.
  absl::StatusOr<bool> End(const std::string& key, uint64_t generation);

  const Options& options() const { return options_; }
  // Round trips to Redis so far, successful or not.
  int64_t round_trips() const { return round_trips_.load(); }

 private:
  // Runs `commands` on a pooled connection, loading the scripts first on a
  // new connection (and again if Redis forgot them).
  absl::StatusOr<std::vector<RedisReply>> Run(
      const std::vector<RedisCommand>& commands);
  absl::StatusOr<std::unique_ptr<RedisConnection>> Acquire();
  void Return(std::unique_ptr<RedisConnection> connection);
  absl::StatusOr<StoredSession> Attach(const std::string& key,
                                       const std::string& model,
                                       const std::string& owner, bool bump);

  const Options options_;
  const std::string ttl_ms_;
  const RedisScript attach_;
  const RedisScript commit_;
  const RedisScript end_;
  std::atomic<int64_t> round_trips_{0};
  absl::Mutex mu_;
  std::vector<std::unique_ptr<RedisConnection>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rnnserve::sessions

#endif  // RNNSERVE_SERVER_SESSIONS_REDIS_SESSIONS_H_
