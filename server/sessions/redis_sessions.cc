#include "server/sessions/redis_sessions.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"
#include "server/sessions/digest.h"
#include "server/sessions/limits_messages.h"

namespace rnnserve::sessions {
namespace {

// A session is one hash. The scripts compare numbers as the decimal strings
// Redis stores, which HINCRBY and our own writes both produce. Expiry times
// in the sorted sets are Redis's own clock, in ms.
//
// Attach: KEYS session, every session, the owner's sessions; ARGV model,
// owner, ttl in ms. Bumps the generation. Returns {generation, step, state,
// last from, last steps, last digest, last answer, model version ('' for a
// session stored without one)}.
constexpr char kAttach[] = R"lua(#!lua flags=allow-oom
local v = redis.call('HMGET', KEYS[1], 'model', 'owner', 'step', 'state',
  'lfrom', 'lsteps', 'ldigest', 'lanswer', 'ver')
if not v[1] or v[2] ~= ARGV[2] then
  return redis.error_reply('RNNSERVE_NOT_FOUND')
end
if v[1] ~= ARGV[1] then return redis.error_reply('RNNSERVE_MODEL ' .. v[1]) end
local gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
local t = redis.call('TIME')
local expires = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], expires, KEYS[1])
if ARGV[2] ~= '' then redis.call('ZADD', KEYS[3], expires, KEYS[1]) end
return {tostring(gen), v[3], v[4], v[5], v[6], v[7], v[8], v[9] or ''}
)lua";

// Commit (the script's body; see the two headers below): KEYS session, every
// session, the owner's sessions; ARGV generation, from step, model, owner,
// step, state, steps, digest, answer, ttl in ms, '1' to end, max sessions, max
// of the owner (0: none), model version. Generation 0 creates the session
// with generation 1.
constexpr char kCommit[] = R"lua(
local cur = redis.call('HMGET', KEYS[1], 'gen', 'step')
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if ARGV[1] == '0' then
  if cur[1] then return 'TAKEN' end
  if ARGV[11] == '1' then return 'ENDED' end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[12]) then return 'FULL' end
  if ARGV[4] ~= '' and tonumber(ARGV[13]) > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
    if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[13]) then
      return 'QUOTA'
    end
  end
  redis.call('HSET', KEYS[1], 'model', ARGV[3], 'owner', ARGV[4], 'gen', '1',
    'ver', ARGV[14])
elseif not cur[1] then
  return 'GONE'
elseif cur[1] ~= ARGV[1] then
  return 'TAKEN'
elseif cur[2] ~= ARGV[2] then
  return 'MOVED'
end
if ARGV[11] == '1' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], KEYS[1])
  redis.call('ZREM', KEYS[3], KEYS[1])
  return 'ENDED'
end
redis.call('HSET', KEYS[1], 'step', ARGV[5], 'state', ARGV[6],
  'lfrom', ARGV[2], 'lsteps', ARGV[7], 'ldigest', ARGV[8],
  'lanswer', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[10])
local expires = now + tonumber(ARGV[10])
redis.call('ZADD', KEYS[2], expires, KEYS[1])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], expires, KEYS[1]) end
if ARGV[1] == '0' then return 'CREATED' end
return 'OK'
)lua";

// Under maxmemory (with noeviction) Redis refuses a script that may write
// before it runs, unless the script allows it: creating a session is
// refused then (RESOURCE_EXHAUSTED), while the commits and attaches of
// sessions that exist, which replace what they store by as much, go on.
constexpr char kMayNotGrow[] = "#!lua\n";
constexpr char kMayGrow[] = "#!lua flags=allow-oom\n";

// Count: KEYS every session. Sessions not yet expired.
constexpr char kCount[] = R"lua(#!lua flags=no-writes
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
)lua";

// CountByVersion: KEYS the index of every session, ARGV the model. Reads
// each session not yet expired: O(sessions), for seldom use. Answers
// version, count, version, count, ...; a session stored without a version
// counts under none.
constexpr char kCountByVersion[] = R"lua(#!lua flags=no-writes
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local counts = {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  local v = redis.call('HMGET', key, 'model', 'ver')
  if v[1] == ARGV[1] and v[2] then counts[v[2]] = (counts[v[2]] or 0) + 1 end
end
local out = {}
for version, n in pairs(counts) do
  out[#out + 1] = version
  out[#out + 1] = n
end
return out
)lua";

std::string FloatBytes(std::span<const float> values) {
  return std::string(reinterpret_cast<const char*>(values.data()),
                     values.size() * sizeof(float));
}

absl::Status Corrupt(const std::string& what) {
  return absl::DataLossError(
      absl::StrCat("session store: a session in Redis has a bad ", what));
}

absl::Status Malformed() {
  return absl::DataLossError(
      "session store: Redis answered a malformed count of sessions by "
      "version");
}

absl::StatusOr<uint64_t> Number(const RedisReply& r, const char* what) {
  uint64_t n = 0;
  if (r.type != RedisReply::Type::kString || !absl::SimpleAtoi(r.str, &n)) {
    return Corrupt(what);
  }
  return n;
}

absl::StatusOr<std::vector<float>> Floats(const RedisReply& r,
                                          const char* what) {
  if (r.type != RedisReply::Type::kString ||
      r.str.size() % sizeof(float) != 0) {
    return Corrupt(what);
  }
  std::vector<float> values(r.str.size() / sizeof(float));
  if (!values.empty()) std::memcpy(values.data(), r.str.data(), r.str.size());
  return values;
}

// The text of a script's error_reply, without the "ERR " Redis may put
// before it.
std::string_view ScriptError(const RedisReply& reply) {
  std::string_view text = reply.str;
  if (text.substr(0, 4) == "ERR ") text.remove_prefix(4);
  return text;
}

// A write Redis refused: under maxmemory with noeviction it says OOM.
absl::Status Refused(const RedisReply& reply) {
  if (reply.str.rfind("OOM", 0) == 0) {
    return absl::ResourceExhaustedError(
        "session store: Redis is full (maxmemory) and refused the session's "
        "state; end unused sessions or give Redis more memory");
  }
  return absl::UnavailableError(
      absl::StrCat("session store: Redis refused the operation: ", reply.str));
}

absl::StatusOr<SessionRecord> ParseAttach(const RedisReply& reply,
                                          const std::string& model,
                                          const std::string& owner) {
  if (reply.is_error()) {
    constexpr std::string_view kModel = "RNNSERVE_MODEL ";
    const std::string_view error = ScriptError(reply);
    if (error == "RNNSERVE_NOT_FOUND") return NoSuchSession();
    if (error.substr(0, kModel.size()) == kModel) {
      return absl::InvalidArgumentError(absl::StrCat(
          "session_token: the session belongs to model \"",
          AbslView(error.substr(kModel.size())), "\", not \"", model, "\""));
    }
    return Refused(reply);
  }
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 8) {
    return Corrupt("attach reply");
  }
  const std::vector<RedisReply>& e = reply.elements;
  SessionRecord s;
  s.model = model;
  s.owner = owner;
  ASSIGN_OR_RETURN(s.generation, Number(e[0], "generation"));
  ASSIGN_OR_RETURN(s.next_step, Number(e[1], "step"));
  ASSIGN_OR_RETURN(s.state, Floats(e[2], "state"));
  ASSIGN_OR_RETURN(s.last_from, Number(e[3], "last chunk's position"));
  ASSIGN_OR_RETURN(uint64_t last_steps, Number(e[4], "last chunk's steps"));
  s.last_steps = static_cast<uint32_t>(last_steps);
  s.last_digest = e[5].str;
  ASSIGN_OR_RETURN(s.last_answer, Floats(e[6], "last answer"));
  s.model_version = e[7].str;
  return s;
}

}  // namespace

std::string SessionKey(const std::string& prefix, const std::string& token) {
  return absl::StrCat(prefix, "session:", Sha256Hex(token));
}

RedisSessions::RedisSessions(Options options, SessionObserver* observer)
    : options_(std::move(options)),
      observer_(observer),
      ttl_ms_(absl::StrCat(std::max<int64_t>(
          1, absl::ToInt64Milliseconds(options_.limits.idle_ttl)))),
      all_key_(absl::StrCat(options_.key_prefix, "sessions")),
      attach_(kAttach),
      create_(absl::StrCat(kMayNotGrow, kCommit)),
      commit_(absl::StrCat(kMayGrow, kCommit)),
      count_(kCount),
      count_by_version_(kCountByVersion) {}

RedisSessions::~RedisSessions() = default;

std::string RedisSessions::OwnerKey(const std::string& owner) const {
  return absl::StrCat(options_.key_prefix, "owner:", owner);
}

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisSessions::Acquire(
    bool& reused) {
  {
    absl::MutexLock lock(&mu_);
    reused = !idle_.empty();
    if (reused) {
      std::unique_ptr<RedisConnection> c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  round_trips_.fetch_add(1);
  return RedisConnection::Connect(options_.connection);
}

void RedisSessions::Return(std::unique_ptr<RedisConnection> connection) {
  if (connection->broken()) return;
  absl::MutexLock lock(&mu_);
  idle_.push_back(std::move(connection));
}

absl::StatusOr<std::vector<RedisReply>> RedisSessions::RunOn(
    RedisConnection& c, const std::vector<RedisCommand>& commands) {
  round_trips_.fetch_add(1);
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies, c.Pipeline(commands));
  std::vector<RedisCommand> again;
  std::vector<size_t> where;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (RedisScript::IsNoScript(replies[i])) {
      again.push_back(commands[i]);
      where.push_back(i);
    }
  }
  if (again.empty()) return replies;
  // Redis forgot the scripts (SCRIPT FLUSH, or a restart). A NOSCRIPT reply
  // ran nothing, but the other commands of the pipeline did: only the
  // failed ones are sent again.
  round_trips_.fetch_add(2);
  RETURN_IF_ERROR(c.Pipeline({attach_.Load(), create_.Load(), commit_.Load(),
                              count_.Load(), count_by_version_.Load()})
                      .status());
  ASSIGN_OR_RETURN(std::vector<RedisReply> retried, c.Pipeline(again));
  for (size_t j = 0; j < where.size(); ++j) {
    replies[where[j]] = std::move(retried[j]);
  }
  return replies;
}

absl::StatusOr<std::vector<RedisReply>> RedisSessions::Run(
    std::string_view operation, const std::vector<RedisCommand>& commands,
    bool may_repeat) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<RedisReply>> replies;
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = false;
    absl::StatusOr<std::unique_ptr<RedisConnection>> c = Acquire(reused);
    if (!c.ok()) {
      replies = c.status();
      break;
    }
    replies = RunOn(**c, commands);
    Return(std::move(*c));
    if (replies.ok() || !reused) break;
    // A pooled connection failed: Redis may have restarted since it was
    // made, and the others in the pool are as stale. Drop them all; an
    // operation that may run twice tries once more on a new connection.
    {
      absl::MutexLock lock(&mu_);
      idle_.clear();
    }
    if (!may_repeat) break;
  }
  if (observer_ != nullptr) {
    observer_->OnStoreOperation(operation, absl::Now() - start, replies.ok());
  }
  return replies;
}

absl::StatusOr<AttachedSession> RedisSessions::CreateWithToken(
    const std::string& token, const std::string& model, size_t state_size,
    const std::string& owner) {
  // The bounds are checked where they hold, in the first commit's script:
  // a check here would cost a round trip and prove nothing.
  return Unstored(token, SessionKey(options_.key_prefix, token), model,
                  state_size, owner);
}

absl::StatusOr<AttachedSession> RedisSessions::TakeOver(
    const std::string& token, const std::string& model,
    const std::string& owner) {
  AttachedSession session;
  session.token = token;
  session.key = SessionKey(options_.key_prefix, token);
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                   Run("attach",
                       {attach_.Call({session.key, all_key_, OwnerKey(owner)},
                                     {model, owner, ttl_ms_})},
                       /*may_repeat=*/true));
  ASSIGN_OR_RETURN(session.record, ParseAttach(replies[0], model, owner));
  if (observer_ != nullptr) {
    observer_->OnResumed(model, session.record.model_version);
  }
  return session;
}

RedisCommand RedisSessions::CommitCommand(const SessionCommit& c) const {
  const SessionLimits& limits = options_.limits;
  return (c.generation == 0 ? create_ : commit_)
      .Call({c.key, all_key_, OwnerKey(c.owner)},
            {absl::StrCat(c.generation), absl::StrCat(c.from_step), c.model,
             c.owner, absl::StrCat(c.next_step), FloatBytes(c.state),
             absl::StrCat(c.steps), c.digest, FloatBytes(c.answer), ttl_ms_,
             c.end_session ? "1" : "0", absl::StrCat(limits.max_sessions),
             absl::StrCat(std::max<int64_t>(0, limits.max_sessions_per_owner)),
             c.model_version});
}

std::vector<absl::Status> RedisSessions::CommitAll(
    std::span<const SessionCommit> commits) {
  std::vector<RedisCommand> commands;
  commands.reserve(commits.size());
  for (const SessionCommit& c : commits) commands.push_back(CommitCommand(c));
  absl::StatusOr<std::vector<RedisReply>> replies =
      Run("commit", commands, /*may_repeat=*/false);
  std::vector<absl::Status> statuses;
  statuses.reserve(commits.size());
  for (size_t i = 0; i < commits.size(); ++i) {
    if (!replies.ok()) {
      statuses.push_back(replies.status());
      continue;
    }
    const RedisReply& r = (*replies)[i];
    // The commit carries the session's model and version (SessionCommit).
    const std::string& model = commits[i].model;
    const std::string& version = commits[i].model_version;
    if (r.is_error()) {
      statuses.push_back(Refused(r));
      if (observer_ != nullptr && commits[i].generation == 0 &&
          absl::IsResourceExhausted(statuses.back())) {
        observer_->OnRefused(model, version);
      }
    } else if (r.str == "OK") {
      statuses.push_back(absl::OkStatus());
    } else if (r.str == "CREATED") {
      statuses.push_back(absl::OkStatus());
      if (observer_ != nullptr) observer_->OnCreated(model, version);
    } else if (r.str == "ENDED") {
      statuses.push_back(absl::OkStatus());
      if (observer_ != nullptr && commits[i].generation != 0) {
        observer_->OnEnded(model, version);
      }
    } else if (r.str == "TAKEN") {
      statuses.push_back(TakenOver());
      if (observer_ != nullptr) observer_->OnTakenOver(model, version);
    } else if (r.str == "GONE") {
      statuses.push_back(NoSuchSession());
    } else if (r.str == "FULL") {
      statuses.push_back(StoreFull(options_.limits.max_sessions, true));
      if (observer_ != nullptr) observer_->OnRefused(model, version);
    } else if (r.str == "QUOTA") {
      statuses.push_back(QuotaFull(options_.limits.max_sessions_per_owner));
      if (observer_ != nullptr) observer_->OnRefused(model, version);
    } else {
      statuses.push_back(absl::InternalError(absl::StrCat(
          "session store: the session moved under its own call from step ",
          commits[i].from_step)));
    }
  }
  return statuses;
}

absl::Status RedisSessions::Probe() {
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                   Run("probe", {{"PING"}}, /*may_repeat=*/true));
  if (replies[0].is_error()) return Refused(replies[0]);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RedisSessions::Count() {
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                   Run("probe", {count_.Call({all_key_}, {})},
                       /*may_repeat=*/true));
  if (replies[0].is_error()) return Refused(replies[0]);
  return replies[0].integer;
}

absl::StatusOr<std::map<std::string, int64_t>> RedisSessions::CountByVersion(
    const std::string& model) {
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                   Run("probe", {count_by_version_.Call({all_key_}, {model})},
                       /*may_repeat=*/true));
  const RedisReply& reply = replies[0];
  if (reply.is_error()) return Refused(reply);
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() % 2) {
    return Malformed();
  }
  std::map<std::string, int64_t> counts;
  for (size_t i = 0; i < reply.elements.size(); i += 2) {
    const RedisReply& version = reply.elements[i];
    const RedisReply& n = reply.elements[i + 1];
    if (version.type != RedisReply::Type::kString ||
        n.type != RedisReply::Type::kInteger) {
      return Malformed();
    }
    counts[version.str] = n.integer;
  }
  return counts;
}

}  // namespace rnnserve::sessions
