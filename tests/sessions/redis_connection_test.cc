// The Redis connection against a real redis-server on a loopback port.
#include "server/sessions/redis_connection.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/redis_server.h"

namespace rnnserve::sessions {
namespace {

using ::testing::HasSubstr;

RedisConnection::Options At(const testing::RedisServer& redis) {
  RedisConnection::Options options;
  options.address = {"127.0.0.1", redis.port(), 0};
  return options;
}

std::unique_ptr<RedisConnection> MustConnect(
    const RedisConnection::Options& options) {
  auto connection = RedisConnection::Connect(options);
  EXPECT_TRUE(connection.ok()) << connection.status();
  return connection.ok() ? std::move(*connection) : nullptr;
}

TEST(ParseRedisUrlTest, HostPortAndDatabase) {
  auto a = ParseRedisUrl("redis://cache.local:6380/2", "--session-store");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "cache.local");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->db, 2);
  auto b = ParseRedisUrl("redis://10.0.0.1", "--session-store");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->port, 6379);
  EXPECT_EQ(b->db, 0);
}

TEST(ParseRedisUrlTest, BadUrlsNameTheFlagAndTheForm) {
  for (const char* url :
       {"cache:6379", "redis://", "redis://h:0", "redis://h:99999",
        "redis://h:x", "redis://h/-1", "redis://h/db"}) {
    auto a = ParseRedisUrl(url, "--session-store");
    ASSERT_FALSE(a.ok()) << url;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(a.status().message(), HasSubstr("--session-store"));
    EXPECT_THAT(a.status().message(), HasSubstr("redis://HOST[:PORT][/DB]"));
  }
}

TEST(RedisConnectionTest, BinarySafeValuesRoundTrip) {
  testing::RedisServer redis;
  auto c = MustConnect(At(redis));
  ASSERT_NE(c, nullptr);
  const std::string value("a\0b\xff\r\n", 6);
  ASSERT_TRUE(c->Run({"SET", "k", value}).ok());
  auto got = c->Run({"GET", "k"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->type, RedisReply::Type::kString);
  EXPECT_EQ(got->str, value);
  auto missing = c->Run({"GET", "nothing"});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->type, RedisReply::Type::kNil);
}

TEST(RedisConnectionTest, PipelineIsOneRoundTripWithRepliesInOrder) {
  testing::RedisServer redis;
  auto c = MustConnect(At(redis));
  ASSERT_NE(c, nullptr);
  const int64_t before = c->round_trips();
  std::vector<RedisCommand> commands;
  for (int i = 0; i < 100; ++i) {
    commands.push_back({"INCRBY", "counter", absl::StrCat(i)});
  }
  commands.push_back({"HSET"});  // Wrong arity: an error reply, in place.
  auto replies = c->Pipeline(commands);
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_EQ(c->round_trips() - before, 1);
  ASSERT_EQ(replies->size(), 101u);
  int64_t sum = 0;
  for (int i = 0; i < 100; ++i) {
    sum += i;
    EXPECT_EQ((*replies)[i].integer, sum);
  }
  EXPECT_TRUE((*replies)[100].is_error());
  // The connection is still in step after an error reply.
  auto after = c->Run({"GET", "counter"});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->str, absl::StrCat(sum));
}

TEST(RedisConnectionTest, ScriptsRunBySha1AndAreReloadedAfterAFlush) {
  testing::RedisServer redis;
  auto c = MustConnect(At(redis));
  ASSERT_NE(c, nullptr);
  RedisScript script("return {KEYS[1], ARGV[1]}");
  auto loaded = c->Run(script.Load());
  ASSERT_TRUE(loaded.ok());
  // The SHA-1 we compute is the one Redis computes.
  EXPECT_EQ(loaded->str, script.sha1());
  auto ran = c->Run(script.Call({"key"}, {"arg"}));
  ASSERT_TRUE(ran.ok());
  ASSERT_EQ(ran->elements.size(), 2u);
  EXPECT_EQ(ran->elements[0].str, "key");
  EXPECT_EQ(ran->elements[1].str, "arg");
  ASSERT_TRUE(c->Run({"SCRIPT", "FLUSH"}).ok());
  auto flushed = c->Run(script.Call({"key"}, {"arg"}));
  ASSERT_TRUE(flushed.ok());
  EXPECT_TRUE(RedisScript::IsNoScript(*flushed)) << flushed->str;
}

TEST(RedisConnectionTest, NothingListeningIsUnavailableNamingTheAddress) {
  int port = 0;
  {
    testing::RedisServer redis;
    port = redis.port();
  }
  RedisConnection::Options options;
  options.address = {"127.0.0.1", port, 0};
  auto c = RedisConnection::Connect(options);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(c.status().message(),
              HasSubstr(absl::StrCat("127.0.0.1:", port)));
}

TEST(RedisConnectionTest, ADeadServerBreaksTheConnectionLoudly) {
  testing::RedisServer redis;
  auto c = MustConnect(At(redis));
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->Run({"SET", "k", "v"}).ok());
  redis.Restart();
  auto after = c->Run({"GET", "k"});
  EXPECT_FALSE(after.ok());
  EXPECT_EQ(after.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(c->broken());
  // Broken for good: no call is sent on a connection out of step.
  EXPECT_EQ(c->Run({"PING"}).status().code(), absl::StatusCode::kUnavailable);
  // A new connection reaches the restarted server.
  auto fresh = MustConnect(At(redis));
  ASSERT_NE(fresh, nullptr);
  EXPECT_TRUE(fresh->Run({"PING"}).ok());
}

TEST(RedisConnectionTest, AStalledServerTimesOutWithinTheIoTimeout) {
  testing::RedisServer redis;
  RedisConnection::Options options = At(redis);
  options.io_timeout = absl::Milliseconds(200);
  auto c = MustConnect(options);
  ASSERT_NE(c, nullptr);
  redis.Pause();
  const absl::Time start = absl::Now();
  auto stalled = c->Run({"PING"});
  const absl::Duration took = absl::Now() - start;
  redis.Resume();
  EXPECT_EQ(stalled.status().code(), absl::StatusCode::kUnavailable);
  // Not a speed bound: only that the call gave up rather than hung.
  EXPECT_LT(took, absl::Seconds(5));
  EXPECT_TRUE(c->broken());
}

TEST(RedisConnectionTest, PasswordIsSentAndAWrongOneIsRefused) {
  testing::RedisServer redis({"--requirepass", "s3cret-s3cret"});
  RedisConnection::Options options = At(redis);
  options.password = "s3cret-s3cret";
  auto c = MustConnect(options);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->Run({"SET", "k", "v"}).ok());
  options.password = "wrong";
  auto refused = RedisConnection::Connect(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  options.password = "";
  auto none = RedisConnection::Connect(options);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(none.status().message(), HasSubstr("requires a password"));
}

TEST(RedisConnectionTest, SelectsTheDatabase) {
  testing::RedisServer redis;
  RedisConnection::Options options = At(redis);
  options.address.db = 3;
  auto three = MustConnect(options);
  ASSERT_NE(three, nullptr);
  ASSERT_TRUE(three->Run({"SET", "k", "in-3"}).ok());
  options.address.db = 0;
  auto zero = MustConnect(options);
  ASSERT_NE(zero, nullptr);
  EXPECT_EQ(zero->Run({"GET", "k"})->type, RedisReply::Type::kNil);
}

}  // namespace
}  // namespace rnnserve::sessions
