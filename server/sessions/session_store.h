// Streaming sessions: the recurrent state a client carries from chunk to
// chunk and from one call to the next, found by an unguessable token and
// bound to the caller that created it. Two stores keep them: one in the
// server's memory, one in Redis that every replica shares. Both keep the
// same rules, written here:
//
// - A call that presents a token takes the session over: the store bumps
//   the session's generation, and a commit made under an older generation is
//   refused (ABORTED). Whoever held the session before learns it at its next
//   commit, wherever it runs; the newest call always wins.
// - A chunk's result (the state after it, the step counter, the chunk's
//   answer and a digest of its request) is committed atomically, and only if
//   the session is still at the generation and position the chunk started
//   from. The last chunk's answer stays with the session, so that a retry of
//   it can be answered again without running it twice.
// - A session exists from its first committed chunk on; it expires after
//   idle_ttl without an attach or a commit.
#ifndef RNNSERVE_SERVER_SESSIONS_SESSION_STORE_H_
#define RNNSERVE_SERVER_SESSIONS_SESSION_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rnnserve::sessions {

// A session as a store holds it.
struct SessionRecord {
  std::string model;
  // The model version the session started on and stays on; empty for a
  // session stored before versions were recorded.
  std::string model_version;
  std::string owner;  // Who may attach it ("" when anyone may).
  // Bumped by every take-over; 0 for a session not yet committed.
  uint64_t generation = 0;
  uint64_t next_step = 0;    // Steps run since start or the last reset.
  std::vector<float> state;  // The model's state layout; zeros at start.
  // The last committed chunk: the position it was sent from (before any
  // reset it made), its steps, a digest of its request (empty: none yet)
  // and its outputs.
  uint64_t last_from = 0;
  uint32_t last_steps = 0;
  std::string last_digest;
  std::vector<float> last_answer;
};

// A session attached to one call.
struct AttachedSession {
  std::string token;  // As the client presents it.
  std::string key;    // The store's name for it.
  SessionRecord record;
};

// One chunk's result, to be committed if the session is still where the
// chunk found it. The spans must stay valid until the commit returns.
struct SessionCommit {
  std::string key;
  // The generation the chunk's call attached with; 0 creates the session
  // (its first chunk), which then has generation 1.
  uint64_t generation = 0;
  uint64_t from_step = 0;  // The session's position when the chunk began.
  // The session's model and version: stored on creation, and named in the
  // observer's events of every commit (SessionObserver).
  std::string model;
  std::string model_version;
  std::string owner;       // Read on creation only.
  uint64_t next_step = 0;  // The position after the chunk.
  std::span<const float> state;
  uint32_t steps = 0;
  std::string digest;
  std::span<const float> answer;
  // Ends the session instead: it is deleted, its token stops working.
  bool end_session = false;
};

// What every store is given.
struct SessionLimits {
  // A session is dropped after this long without an attach or a commit.
  // Default 10 min.
  absl::Duration idle_ttl = absl::Minutes(10);
  // Most sessions held at once; new ones beyond it are refused, none is
  // evicted. With a shared store, a bound of the whole cluster. Default
  // 10000.
  int64_t max_sessions = 10000;
  // Most sessions held at once by one owner (one bearer token); 0: no
  // limit. Sessions without an owner are not counted. Default 1000.
  int64_t max_sessions_per_owner = 1000;
};

// A session store. Thread-safe. Failures of the store itself are
// UNAVAILABLE, naming the store; never a wrong answer.
class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // "memory" or "redis", for metrics and logs.
  virtual std::string_view backend() const = 0;
  // Whether operations cross the network (and are worth overlapping with
  // compute).
  virtual bool remote() const { return false; }

  // A new session of `model` with `state_size` zeros, not stored until its
  // first commit (generation 0). `owner` identifies the caller (a digest of
  // its bearer token, never the token; empty without authentication): only
  // the same owner may attach it. RESOURCE_EXHAUSTED when the store, or the
  // owner's quota, is full (checked again by the commit). A fresh random
  // token, then CreateWithToken.
  absl::StatusOr<AttachedSession> Create(const std::string& model,
                                         size_t state_size,
                                         const std::string& owner);

  // As Create, but under `token`, which the caller derives itself (the Open
  // Inference Protocol's sequence ids, scoped to their owner): any replica
  // derives the same one. The token must be one no other owner can derive.
  // If a session of `token` exists, the first commit is refused with
  // ABORTED (TakenOver), as for a token already used; take it over instead.
  virtual absl::StatusOr<AttachedSession> CreateWithToken(
      const std::string& token, const std::string& model, size_t state_size,
      const std::string& owner) = 0;

  // Takes the session of `token` over for a new call (see above) and
  // refreshes its expiry. NOT_FOUND for an unknown, ended or expired token
  // and for a session of another owner (one answer, so that it reveals
  // nothing); INVALID_ARGUMENT when it belongs to another model.
  virtual absl::StatusOr<AttachedSession> TakeOver(
      const std::string& token, const std::string& model,
      const std::string& owner) = 0;

  // Commits every chunk, in one round trip where the store has trips to
  // make; one status per commit, in order: OK; ABORTED (taken over);
  // NOT_FOUND (ended, expired, or lost); RESOURCE_EXHAUSTED (full);
  // UNAVAILABLE (the store failed: whether it was committed is unknown).
  virtual std::vector<absl::Status> CommitAll(
      std::span<const SessionCommit> commits) = 0;

  // Whether the store answers now.
  virtual absl::Status Probe() = 0;
  // Sessions held (with a shared store, by the whole cluster).
  virtual absl::StatusOr<int64_t> Count() = 0;
  // Sessions held of `model`, by the version they run on (as their first
  // commit recorded it): every version with at least one session. For the
  // versions that wait for their last session before they are freed; one
  // pass over every session, however many versions: call it seldom.
  virtual absl::StatusOr<std::map<std::string, int64_t>> CountByVersion(
      const std::string& model) = 0;
  // Sessions held that run on version `version` of `model`: CountByVersion's
  // count of it, 0 when it has none.
  absl::StatusOr<int64_t> CountOn(const std::string& model,
                                  const std::string& version);
  // Drops expired sessions where the store must do it itself; returns how
  // many.
  virtual int Reap() { return 0; }

 protected:
  // What Create and CreateWithToken give: a session of `token`, named
  // `key` in the store, with `state_size` zeros and generation 0.
  static AttachedSession Unstored(const std::string& token, std::string key,
                                  const std::string& model, size_t state_size,
                                  const std::string& owner);
};

// The session's position and its message, for a chunk sent from another:
// FAILED_PRECONDITION naming the position, which also rides along as the
// payload kPositionPayload (decimal), for a machine to read.
inline constexpr char kPositionPayload[] = "rnnserve-session-position";
absl::Status PositionMismatch(uint64_t position, uint64_t expected);
// The position a PositionMismatch status carries, if any.
std::optional<uint64_t> PositionOf(const absl::Status& status);

// The answer to a commit under an older generation.
absl::Status TakenOver();
// The answer for a token the caller may not use, whatever the reason.
absl::Status NoSuchSession();

// A short, safe-to-log form of a token: its first characters only.
std::string TokenForLog(const std::string& token);

}  // namespace rnnserve::sessions

#endif  // RNNSERVE_SERVER_SESSIONS_SESSION_STORE_H_
