// A blocking connection to one Redis server, for the shared session store.
// Plain C++ over hiredis; hiredis's types stay in the .cc file.
#ifndef RNNSERVE_SERVER_SESSIONS_REDIS_CONNECTION_H_
#define RNNSERVE_SERVER_SESSIONS_REDIS_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace rnnserve::sessions {

// Where the Redis server is, parsed from `redis://HOST:PORT[/DB]`.
struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
};

// INVALID_ARGUMENT naming `flag` and the expected form when `url` is not
// redis://HOST[:PORT][/DB].
absl::StatusOr<RedisAddress> ParseRedisUrl(std::string_view url,
                                           std::string_view flag);

// One reply, copied out of hiredis. Errors are replies too (kError, with the
// server's message in `str`); only a broken connection is a Status.
struct RedisReply {
  enum class Type { kString, kArray, kInteger, kNil, kStatus, kError };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;  // kString (binary-safe), kStatus and kError.
  std::vector<RedisReply> elements;  // kArray.

  bool is_error() const { return type == Type::kError; }
};

// A command: its words, binary-safe.
using RedisCommand = std::vector<std::string>;

// One TCP connection. Not thread-safe: one caller at a time. After an I/O
// error or a timeout the connection is broken for good (replies may be out
// of step), and every later call fails; make a new one.
class RedisConnection {
 public:
  struct Options {
    RedisAddress address;
    // Sent with AUTH right after connecting, when not empty.
    std::string password;
    // How long connecting may take. Default 1 s.
    absl::Duration connect_timeout = absl::Seconds(1);
    // How long one read or write may block. Default 1 s.
    absl::Duration io_timeout = absl::Seconds(1);
  };

  // Connects, authenticates and selects the database. UNAVAILABLE naming
  // the address when the server cannot be reached; PERMISSION_DENIED when
  // it refuses the password.
  static absl::StatusOr<std::unique_ptr<RedisConnection>> Connect(
      const Options& options);

  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends every command, then reads every reply, in order: one round trip
  // for the lot. UNAVAILABLE when the connection breaks or times out.
  absl::StatusOr<std::vector<RedisReply>> Pipeline(
      const std::vector<RedisCommand>& commands);

  // One command, one round trip.
  absl::StatusOr<RedisReply> Run(const RedisCommand& command);

  bool broken() const { return broken_; }
  // Round trips made so far.
  int64_t round_trips() const { return round_trips_; }

 private:
  struct Context;
  explicit RedisConnection(std::unique_ptr<Context> context,
                           std::string address);
  absl::Status Broken(std::string_view what);

  std::unique_ptr<Context> context_;
  const std::string address_;  // For messages.
  bool broken_ = false;
  int64_t round_trips_ = 0;
};

// A Lua script run by its SHA-1 (EVALSHA), loaded again when the server no
// longer knows it (after a restart or SCRIPT FLUSH).
class RedisScript {
 public:
  explicit RedisScript(std::string source);

  // The EVALSHA command for `keys` and `args`.
  RedisCommand Call(const std::vector<std::string>& keys,
                    const std::vector<std::string>& args) const;
  // The SCRIPT LOAD command; its reply is the SHA-1 this script uses.
  RedisCommand Load() const { return {"SCRIPT", "LOAD", source_}; }
  // Whether `reply` says the server does not know the script.
  static bool IsNoScript(const RedisReply& reply);

  const std::string& sha1() const { return sha1_; }

 private:
  const std::string source_;
  const std::string sha1_;
};

}  // namespace rnnserve::sessions

#endif  // RNNSERVE_SERVER_SESSIONS_REDIS_CONNECTION_H_
