#include "server/sessions/redis_sessions.h"

#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"
#include "server/sessions/digest.h"

namespace rnnserve::sessions {
namespace {

// A session is one hash. The scripts compare numbers as the decimal strings
// Redis stores, which HINCRBY and our own writes both produce.
//
// Attach: KEYS[1] the session; ARGV model, owner, ttl in ms, '1' to bump
// the generation. Returns {generation, step, state, last first step, last
// steps, last digest, last answer}.
constexpr char kAttach[] = R"lua(
local v = redis.call('HMGET', KEYS[1], 'model', 'owner', 'gen', 'step',
  'state', 'lfirst', 'lsteps', 'ldigest', 'lanswer')
if not v[1] or v[2] ~= ARGV[2] then
  return redis.error_reply('RNNSERVE_NOT_FOUND')
end
if v[1] ~= ARGV[1] then return redis.error_reply('RNNSERVE_MODEL ' .. v[1]) end
local gen = v[3]
if ARGV[4] == '1' then gen = redis.call('HINCRBY', KEYS[1], 'gen', 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {tostring(gen), v[4], v[5], v[6], v[7], v[8], v[9]}
)lua";

// Commit: KEYS[1] the session; ARGV generation, from step, model, owner,
// step, state, last first step, last steps, last digest, last answer, ttl
// in ms. Generation 0 creates the session with generation 1.
constexpr char kCommit[] = R"lua(
local cur = redis.call('HMGET', KEYS[1], 'gen', 'step')
if ARGV[1] == '0' then
  if cur[1] then return 'TAKEN' end
  redis.call('HSET', KEYS[1], 'model', ARGV[3], 'owner', ARGV[4], 'gen', '1')
elseif not cur[1] then
  return 'GONE'
elseif cur[1] ~= ARGV[1] then
  return 'TAKEN'
elseif cur[2] ~= ARGV[2] then
  return 'MOVED'
end
redis.call('HSET', KEYS[1], 'step', ARGV[5], 'state', ARGV[6],
  'lfirst', ARGV[7], 'lsteps', ARGV[8], 'ldigest', ARGV[9],
  'lanswer', ARGV[10])
redis.call('PEXPIRE', KEYS[1], ARGV[11])
return 'OK'
)lua";

// End: KEYS[1] the session; ARGV generation. 1 when deleted.
constexpr char kEnd[] = R"lua(
if redis.call('HGET', KEYS[1], 'gen') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
)lua";

std::string FloatBytes(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()),
                     values.size() * sizeof(float));
}

absl::Status Corrupt(const std::string& what) {
  return absl::DataLossError(
      absl::StrCat("session store: a session in Redis has a bad ", what));
}

absl::StatusOr<uint64_t> Number(const RedisReply& r, const char* what) {
  uint64_t n = 0;
  if (r.type != RedisReply::Type::kString || !absl::SimpleAtoi(r.str, &n)) {
    return Corrupt(what);
  }
  return n;
}

// The text of a script's error_reply, without the "ERR " Redis may put
// before it.
std::string_view ScriptError(const RedisReply& reply) {
  std::string_view text = reply.str;
  if (text.substr(0, 4) == "ERR ") text.remove_prefix(4);
  return text;
}

absl::StatusOr<StoredSession> ParseAttach(const RedisReply& reply,
                                          const std::string& model,
                                          const std::string& owner) {
  if (reply.is_error()) {
    constexpr std::string_view kModel = "RNNSERVE_MODEL ";
    const std::string_view error = ScriptError(reply);
    if (error == "RNNSERVE_NOT_FOUND") {
      return absl::NotFoundError(
          "session_token: no such session (unknown, ended or expired)");
    }
    if (error.substr(0, kModel.size()) == kModel) {
      return absl::InvalidArgumentError(absl::StrCat(
          "session_token: the session belongs to model \"",
          AbslView(error.substr(kModel.size())), "\", not \"", model, "\""));
    }
    return absl::UnavailableError(
        absl::StrCat("session store: Redis refused an attach: ", reply.str));
  }
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 7) {
    return Corrupt("attach reply");
  }
  const std::vector<RedisReply>& e = reply.elements;
  StoredSession s;
  s.model = model;
  s.owner = owner;
  ASSIGN_OR_RETURN(s.generation, Number(e[0], "generation"));
  ASSIGN_OR_RETURN(s.next_step, Number(e[1], "step"));
  if (e[2].type != RedisReply::Type::kString ||
      e[2].str.size() % sizeof(float) != 0) {
    return Corrupt("state");
  }
  s.state.resize(e[2].str.size() / sizeof(float));
  std::memcpy(s.state.data(), e[2].str.data(), e[2].str.size());
  ASSIGN_OR_RETURN(s.last_first_step, Number(e[3], "last first step"));
  ASSIGN_OR_RETURN(uint64_t last_steps, Number(e[4], "last steps"));
  s.last_steps = static_cast<uint32_t>(last_steps);
  s.last_digest = e[5].str;
  s.last_answer = e[6].str;
  return s;
}

CommitOutcome ParseCommit(const RedisReply& reply) {
  // An error reply (e.g. OOM under maxmemory with noeviction) wrote nothing.
  if (reply.is_error()) return CommitOutcome::kRefused;
  if (reply.str == "OK") return CommitOutcome::kCommitted;
  if (reply.str == "TAKEN") return CommitOutcome::kTakenOver;
  if (reply.str == "GONE") return CommitOutcome::kGone;
  return CommitOutcome::kMoved;
}

}  // namespace

std::string SessionKey(const std::string& prefix, const std::string& token) {
  return absl::StrCat(prefix, Sha256Hex(token));
}

RedisSessions::RedisSessions(Options options)
    : options_(std::move(options)),
      ttl_ms_(absl::StrCat(
          std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.idle_ttl)))),
      attach_(kAttach),
      commit_(kCommit),
      end_(kEnd) {}

RedisSessions::~RedisSessions() = default;

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisSessions::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      std::unique_ptr<RedisConnection> c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  round_trips_.fetch_add(1);
  ASSIGN_OR_RETURN(std::unique_ptr<RedisConnection> c,
                   RedisConnection::Connect(options_.connection));
  return c;
}

void RedisSessions::Return(std::unique_ptr<RedisConnection> connection) {
  if (connection->broken()) return;
  absl::MutexLock lock(&mu_);
  idle_.push_back(std::move(connection));
}

absl::StatusOr<std::vector<RedisReply>> RedisSessions::Run(
    const std::vector<RedisCommand>& commands) {
  ASSIGN_OR_RETURN(std::unique_ptr<RedisConnection> c, Acquire());
  round_trips_.fetch_add(1);
  absl::StatusOr<std::vector<RedisReply>> replies = c->Pipeline(commands);
  bool unknown_script = false;
  if (replies.ok()) {
    for (const RedisReply& r : *replies) {
      unknown_script = unknown_script || RedisScript::IsNoScript(r);
    }
  }
  if (unknown_script) {
    // Redis forgot the scripts (SCRIPT FLUSH, or a restart behind a
    // proxy). A NOSCRIPT reply ran nothing, but the other commands of the
    // pipeline did: only the failed ones are sent again.
    round_trips_.fetch_add(2);
    absl::StatusOr<std::vector<RedisReply>> loaded =
        c->Pipeline({attach_.Load(), commit_.Load(), end_.Load()});
    std::vector<RedisCommand> again;
    std::vector<size_t> where;
    for (size_t i = 0; loaded.ok() && i < replies->size(); ++i) {
      if (RedisScript::IsNoScript((*replies)[i])) {
        again.push_back(commands[i]);
        where.push_back(i);
      }
    }
    absl::StatusOr<std::vector<RedisReply>> retried =
        loaded.ok() ? c->Pipeline(again) : loaded.status();
    if (!retried.ok()) {
      replies = retried.status();
    } else {
      for (size_t j = 0; j < where.size(); ++j) {
        (*replies)[where[j]] = std::move((*retried)[j]);
      }
    }
  }
  Return(std::move(c));
  return replies;
}

absl::StatusOr<StoredSession> RedisSessions::Attach(const std::string& key,
                                                    const std::string& model,
                                                    const std::string& owner,
                                                    bool bump) {
  ASSIGN_OR_RETURN(
      std::vector<RedisReply> replies,
      Run({attach_.Call({key}, {model, owner, ttl_ms_, bump ? "1" : "0"})}));
  return ParseAttach(replies[0], model, owner);
}

absl::StatusOr<StoredSession> RedisSessions::TakeOver(
    const std::string& key, const std::string& model,
    const std::string& owner) {
  return Attach(key, model, owner, /*bump=*/true);
}

absl::StatusOr<StoredSession> RedisSessions::Peek(const std::string& key,
                                                  const std::string& model,
                                                  const std::string& owner) {
  return Attach(key, model, owner, /*bump=*/false);
}

absl::StatusOr<std::vector<CommitOutcome>> RedisSessions::CommitAll(
    std::span<const SessionCommit> commits) {
  std::vector<RedisCommand> commands;
  commands.reserve(commits.size());
  for (const SessionCommit& c : commits) {
    const StoredSession& a = c.after;
    commands.push_back(commit_.Call(
        {c.key},
        {absl::StrCat(c.generation), absl::StrCat(c.from_step), a.model,
         a.owner, absl::StrCat(a.next_step), FloatBytes(a.state),
         absl::StrCat(a.last_first_step), absl::StrCat(a.last_steps),
         a.last_digest, a.last_answer, ttl_ms_}));
  }
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies, Run(commands));
  std::vector<CommitOutcome> outcomes;
  outcomes.reserve(replies.size());
  for (const RedisReply& r : replies) outcomes.push_back(ParseCommit(r));
  return outcomes;
}

absl::StatusOr<bool> RedisSessions::End(const std::string& key,
                                        uint64_t generation) {
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                   Run({end_.Call({key}, {absl::StrCat(generation)})}));
  if (replies[0].is_error()) {
    return absl::UnavailableError(absl::StrCat(
        "session store: Redis refused to end a session: ", replies[0].str));
  }
  return replies[0].integer == 1;
}

}  // namespace rnnserve::sessions
