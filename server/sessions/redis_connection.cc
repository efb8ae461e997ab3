#include "server/sessions/redis_connection.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"
#include "server/sessions/digest.h"

namespace rnnserve::sessions {
namespace {

RedisReply Copy(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      out.type = r.type == REDIS_REPLY_STRING   ? RedisReply::Type::kString
                 : r.type == REDIS_REPLY_STATUS ? RedisReply::Type::kStatus
                                                : RedisReply::Type::kError;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i) {
        out.elements.push_back(Copy(*r.element[i]));
      }
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

}  // namespace

struct RedisConnection::Context {
  explicit Context(redisContext* c) : c(c) {}
  ~Context() {
    if (c != nullptr) redisFree(c);
  }
  redisContext* c;
};

absl::StatusOr<RedisAddress> ParseRedisUrl(std::string_view url,
                                           std::string_view flag) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        AbslView(flag), ": expected redis://HOST[:PORT][/DB], got \"",
        AbslView(url), "\" (", AbslView(why), ")"));
  };
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme) return bad("no redis://");
  std::string_view rest = url.substr(kScheme.size());
  RedisAddress address;
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    if (!absl::SimpleAtoi(AbslView(rest.substr(slash + 1)), &address.db) ||
        address.db < 0) {
      return bad("the database is not a number >= 0");
    }
    rest = rest.substr(0, slash);
  }
  if (const size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    if (!absl::SimpleAtoi(AbslView(rest.substr(colon + 1)), &address.port) ||
        address.port <= 0 || address.port > 65535) {
      return bad("the port is not a number from 1 to 65535");
    }
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return bad("no host");
  address.host = std::string(rest);
  return address;
}

RedisConnection::RedisConnection(std::unique_ptr<Context> context,
                                 std::string address)
    : context_(std::move(context)), address_(std::move(address)) {}

RedisConnection::~RedisConnection() = default;

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisConnection::Connect(
    const Options& options) {
  const RedisAddress& a = options.address;
  const std::string where = absl::StrCat(a.host, ":", a.port);
  auto context = std::make_unique<Context>(redisConnectWithTimeout(
      a.host.c_str(), a.port, absl::ToTimeval(options.connect_timeout)));
  if (context->c == nullptr || context->c->err != 0) {
    return absl::UnavailableError(absl::StrCat(
        "session store: cannot connect to Redis at ", where, ": ",
        context->c == nullptr ? "out of memory" : context->c->errstr));
  }
  if (redisSetTimeout(context->c, absl::ToTimeval(options.io_timeout)) !=
      REDIS_OK) {
    return absl::UnavailableError(
        absl::StrCat("session store: cannot set timeouts on ", where));
  }
  redisEnableKeepAlive(context->c);
  std::unique_ptr<RedisConnection> connection(
      new RedisConnection(std::move(context), where));
  std::vector<RedisCommand> hello;
  if (!options.password.empty()) hello.push_back({"AUTH", options.password});
  hello.push_back({"SELECT", absl::StrCat(a.db)});
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                   connection->Pipeline(hello));
  if (!options.password.empty() && replies[0].is_error()) {
    return absl::PermissionDeniedError(
        absl::StrCat("session store: Redis at ", where,
                     " refused the password: ", replies[0].str));
  }
  if (replies.back().is_error() && replies.back().str.rfind("NOAUTH", 0) == 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("session store: Redis at ", where,
                     " requires a password (--session-store-password-file)"));
  }
  if (replies.back().is_error()) {
    return absl::InvalidArgumentError(
        absl::StrCat("session store: Redis at ", where, " refused SELECT ",
                     a.db, ": ", replies.back().str));
  }
  return connection;
}

absl::Status RedisConnection::Broken(std::string_view what) {
  broken_ = true;
  return absl::UnavailableError(absl::StrCat(
      "session store: Redis at ", address_, ": ", AbslView(what), ": ",
      context_->c->errstr[0] != '\0' ? context_->c->errstr : "unknown"));
}

absl::StatusOr<std::vector<RedisReply>> RedisConnection::Pipeline(
    const std::vector<RedisCommand>& commands) {
  if (broken_) {
    return absl::UnavailableError(absl::StrCat(
        "session store: the connection to Redis at ", address_, " broke"));
  }
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const RedisCommand& command : commands) {
    argv.clear();
    lengths.clear();
    for (const std::string& word : command) {
      argv.push_back(word.data());
      lengths.push_back(word.size());
    }
    if (redisAppendCommandArgv(context_->c, static_cast<int>(argv.size()),
                               argv.data(), lengths.data()) != REDIS_OK) {
      return Broken("cannot queue a command");
    }
  }
  ++round_trips_;
  std::vector<RedisReply> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_->c, &raw) != REDIS_OK || raw == nullptr) {
      return Broken("no reply");
    }
    replies.push_back(Copy(*static_cast<redisReply*>(raw)));
    freeReplyObject(raw);
  }
  return replies;
}

absl::StatusOr<RedisReply> RedisConnection::Run(const RedisCommand& command) {
  ASSIGN_OR_RETURN(std::vector<RedisReply> replies, Pipeline({command}));
  return std::move(replies[0]);
}

RedisScript::RedisScript(std::string source)
    : source_(std::move(source)), sha1_(Sha1Hex(source_)) {}

RedisCommand RedisScript::Call(const std::vector<std::string>& keys,
                               const std::vector<std::string>& args) const {
  RedisCommand command = {"EVALSHA", sha1_, absl::StrCat(keys.size())};
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

bool RedisScript::IsNoScript(const RedisReply& reply) {
  return reply.is_error() && reply.str.rfind("NOSCRIPT", 0) == 0;
}

}  // namespace rnnserve::sessions
