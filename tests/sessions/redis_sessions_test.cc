// What only the Redis store does, in a real redis-server: two replicas
// sharing sessions, one round trip per batch of commits, hashed keys,
// Redis's expiry, scripts Redis forgot, and loud failures. (The rules both
// stores keep are checked on both in session_store_test.cc.)
#include "server/sessions/redis_sessions.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/redis_server.h"

namespace rnnserve::sessions {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

RedisSessions::Options At(const testing::RedisServer& redis) {
  RedisSessions::Options options;
  options.connection.address = {"127.0.0.1", redis.port(), 0};
  options.limits.idle_ttl = absl::Seconds(60);
  return options;
}

// Redis as an operator sees it, for checks the store must not influence.
std::unique_ptr<RedisConnection> Inspector(const testing::RedisServer& redis) {
  RedisConnection::Options options;
  options.address = {"127.0.0.1", redis.port(), 0};
  auto c = RedisConnection::Connect(options);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? std::move(*c) : nullptr;
}

// A chunk of `steps` steps leaving `state`, on `s` as its call holds it.
struct Chunk {
  Chunk(const AttachedSession& s, uint32_t steps, std::vector<float> after)
      : state(std::move(after)), answer(steps, 0.5f) {
    commit.key = s.key;
    commit.generation = s.record.generation;
    commit.from_step = s.record.next_step;
    commit.model = s.record.model;
    commit.owner = s.record.owner;
    commit.next_step = s.record.next_step + steps;
    commit.state = state;
    commit.steps = steps;
    commit.digest = "digest";
    commit.answer = answer;
  }
  std::vector<float> state;
  std::vector<float> answer;
  SessionCommit commit;
};

absl::Status CommitOne(RedisSessions& store, const Chunk& chunk) {
  return store.CommitAll({&chunk.commit, 1})[0];
}

// A new session of `store`, its first chunk committed.
AttachedSession Committed(RedisSessions& store, std::vector<float> state) {
  absl::StatusOr<AttachedSession> s = store.Create("sine_rnn", 1, "owner-a");
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return {};
  EXPECT_TRUE(CommitOne(store, Chunk(*s, 3, std::move(state))).ok());
  return *s;
}

TEST(RedisSessionsTest, AnyReplicaContinuesASessionExactly) {
  testing::RedisServer redis;
  RedisSessions replica_a(At(redis));
  RedisSessions replica_b(At(redis));
  const AttachedSession created = Committed(replica_a, {0.5f, -1.25f, 3e-8f});
  auto on_b = replica_b.TakeOver(created.token, "sine_rnn", "owner-a");
  ASSERT_TRUE(on_b.ok()) << on_b.status();
  EXPECT_EQ(on_b->record.next_step, 3u);
  EXPECT_THAT(on_b->record.state, ElementsAre(0.5f, -1.25f, 3e-8f));
  ASSERT_TRUE(CommitOne(replica_b, Chunk(*on_b, 2, {9.0f})).ok());
  auto on_a = replica_a.TakeOver(created.token, "sine_rnn", "owner-a");
  ASSERT_TRUE(on_a.ok());
  EXPECT_EQ(on_a->record.next_step, 5u);
  EXPECT_THAT(on_a->record.state, ElementsAre(9.0f));
}

TEST(RedisSessionsTest, ABatchOfCommitsIsOneRoundTrip) {
  testing::RedisServer redis;
  RedisSessions::Options options = At(redis);
  options.limits.max_sessions_per_owner = 0;
  RedisSessions store(options);
  Committed(store, {0.0f});  // Warm up: the connection and the scripts.
  std::vector<AttachedSession> sessions;
  std::vector<Chunk> chunks;
  chunks.reserve(64);  // The commits point into the chunks.
  for (int i = 0; i < 64; ++i) {
    sessions.push_back(*store.Create("sine_rnn", 1, "owner-a"));
  }
  for (int i = 0; i < 64; ++i) {
    chunks.emplace_back(sessions[i], 3,
                        std::vector<float>{static_cast<float>(i)});
  }
  std::vector<SessionCommit> batch;
  for (const Chunk& c : chunks) batch.push_back(c.commit);
  const int64_t before = store.round_trips();
  const std::vector<absl::Status> outcomes = store.CommitAll(batch);
  EXPECT_EQ(store.round_trips() - before, 1);
  ASSERT_EQ(outcomes.size(), 64u);
  for (int i = 0; i < 64; ++i) {
    EXPECT_TRUE(outcomes[i].ok()) << i << ": " << outcomes[i];
    auto s = store.TakeOver(sessions[i].token, "sine_rnn", "owner-a");
    ASSERT_TRUE(s.ok());
    EXPECT_THAT(s->record.state, ElementsAre(static_cast<float>(i)));
  }
  EXPECT_EQ(*store.Count(), 65);
}

TEST(RedisSessionsTest, KeysAreHashesOfTokensAndExpireWhenIdle) {
  testing::RedisServer redis;
  RedisSessions::Options options = At(redis);
  options.limits.idle_ttl = absl::Seconds(30);
  RedisSessions store(options);
  const AttachedSession s = Committed(store, {1.0f});
  auto inspector = Inspector(redis);
  ASSERT_NE(inspector, nullptr);
  auto keys = inspector->Run({"KEYS", "rnnserve:session:*"});
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->elements.size(), 1u);
  const std::string& key = keys->elements[0].str;
  EXPECT_EQ(key, s.key);
  EXPECT_THAT(key, Not(HasSubstr(s.token)));
  EXPECT_EQ(key.size(), std::string("rnnserve:session:").size() + 64);
  // Nothing in the database holds the token.
  auto all = inspector->Run({"KEYS", "*"});
  ASSERT_TRUE(all.ok());
  for (const RedisReply& k : all->elements) {
    EXPECT_THAT(k.str, Not(HasSubstr(s.token)));
  }
  auto fields = inspector->Run({"HGETALL", key});
  ASSERT_TRUE(fields.ok());
  for (const RedisReply& f : fields->elements) {
    EXPECT_THAT(f.str, Not(HasSubstr(s.token)));
  }
  auto ttl = inspector->Run({"PTTL", key});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->integer, 25000);
  EXPECT_LE(ttl->integer, 30000);
  // A take-over refreshes the expiry.
  ASSERT_TRUE(inspector->Run({"PEXPIRE", key, "1000"}).ok());
  ASSERT_TRUE(store.TakeOver(s.token, "sine_rnn", "owner-a").ok());
  EXPECT_GT(inspector->Run({"PTTL", key})->integer, 25000);
}

TEST(RedisSessionsTest, ExpiredSessionsLeaveTheBoundsToo) {
  testing::RedisServer redis;
  RedisSessions::Options options = At(redis);
  options.limits.idle_ttl = absl::Milliseconds(300);
  options.limits.max_sessions = 2;
  RedisSessions store(options);
  const AttachedSession s = Committed(store, {1.0f});
  Committed(store, {1.0f});
  absl::StatusOr<AttachedSession> third = store.Create("sine_rnn", 1, "");
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(CommitOne(store, Chunk(*third, 1, {1.0f})).code(),
            absl::StatusCode::kResourceExhausted);
  absl::SleepFor(absl::Milliseconds(400));  // Redis's clock: no fake here.
  EXPECT_EQ(store.TakeOver(s.token, "sine_rnn", "owner-a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(*store.Count(), 0);
  third = store.Create("sine_rnn", 1, "");
  EXPECT_TRUE(CommitOne(store, Chunk(*third, 1, {1.0f})).ok());
}

TEST(RedisSessionsTest, ScriptsForgottenByRedisAreLoadedAgain) {
  testing::RedisServer redis;
  RedisSessions store(At(redis));
  Committed(store, {1.0f});
  ASSERT_TRUE(Inspector(redis)->Run({"SCRIPT", "FLUSH"}).ok());
  const AttachedSession s = Committed(store, {2.0f});
  EXPECT_TRUE(store.TakeOver(s.token, "sine_rnn", "owner-a").ok());
}

TEST(RedisSessionsTest, RedisDownIsUnavailableAndARestartWithoutPersistence) {
  testing::RedisServer redis;
  RedisSessions store(At(redis));
  const AttachedSession s = Committed(store, {1.0f});
  auto held = store.TakeOver(s.token, "sine_rnn", "owner-a");
  ASSERT_TRUE(held.ok());
  redis.Kill();
  auto down = store.TakeOver(s.token, "sine_rnn", "owner-a");
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(down.status().message(), HasSubstr("session store"));
  const absl::Status commit = CommitOne(store, Chunk(*held, 1, {2.0f}));
  EXPECT_EQ(commit.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(store.Probe().ok());
  redis.Start();
  EXPECT_TRUE(store.Probe().ok());
  // No persistence: the session is gone, and says so.
  EXPECT_EQ(store.TakeOver(s.token, "sine_rnn", "owner-a").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(RedisSessionsTest, WithPersistenceASessionSurvivesARestart) {
  testing::RedisServer redis(
      {"--appendonly", "yes", "--appendfsync", "always"});
  RedisSessions store(At(redis));
  const AttachedSession s = Committed(store, {4.0f});
  redis.Restart();
  // While Redis loads its file it answers LOADING: UNAVAILABLE, and the
  // client tries again, as a client does.
  auto back = store.TakeOver(s.token, "sine_rnn", "owner-a");
  for (int i = 0; i < 100 && absl::IsUnavailable(back.status()); ++i) {
    EXPECT_THAT(back.status().message(), HasSubstr("LOADING"));
    absl::SleepFor(absl::Milliseconds(50));
    back = store.TakeOver(s.token, "sine_rnn", "owner-a");
  }
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->record.next_step, 3u);
  EXPECT_THAT(back->record.state, ElementsAre(4.0f));
}

TEST(RedisSessionsTest, AStalledRedisIsUnavailableNotAHang) {
  testing::RedisServer redis;
  RedisSessions::Options options = At(redis);
  options.connection.io_timeout = absl::Milliseconds(200);
  RedisSessions store(options);
  const AttachedSession s = Committed(store, {1.0f});
  redis.Pause();
  const absl::Time start = absl::Now();
  auto stalled = store.TakeOver(s.token, "sine_rnn", "owner-a");
  const absl::Duration took = absl::Now() - start;
  redis.Resume();
  EXPECT_EQ(stalled.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(took, absl::Seconds(5)) << "no timeout";
  // The broken connection is not reused; the next call works.
  EXPECT_TRUE(store.TakeOver(s.token, "sine_rnn", "owner-a").ok());
}

TEST(RedisSessionsTest, AFullRedisRefusesTheCommitItCannotStore) {
  testing::RedisServer redis(
      {"--maxmemory", "3mb", "--maxmemory-policy", "noeviction"});
  RedisSessions::Options options = At(redis);
  options.limits.max_sessions_per_owner = 0;
  RedisSessions store(options);
  const std::vector<float> big(64 * 1024, 1.0f);  // 256 KiB of state.
  std::vector<absl::Status> outcomes;
  for (int i = 0; i < 16; ++i) {
    absl::StatusOr<AttachedSession> s = store.Create("sine_rnn", 1, "");
    ASSERT_TRUE(s.ok());
    outcomes.push_back(CommitOne(store, Chunk(*s, 1, big)));
  }
  EXPECT_TRUE(outcomes.front().ok()) << outcomes.front();
  EXPECT_EQ(outcomes.back().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(outcomes.back().message(), HasSubstr("maxmemory"));
}

}  // namespace
}  // namespace rnnserve::sessions
