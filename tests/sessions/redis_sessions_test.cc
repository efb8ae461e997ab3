// Sessions in a real redis-server: creation by the first commit, take-over
// and fencing, one round trip per batch of commits, hashed keys, expiry,
// and loud failures.
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
  options.idle_ttl = absl::Seconds(60);
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

// The first chunk of a new session: 3 steps from 0.
SessionCommit First(const std::string& key, std::vector<float> state) {
  SessionCommit c;
  c.key = key;
  c.generation = 0;
  c.from_step = 0;
  c.after.model = "sine_rnn";
  c.after.owner = "owner-a";
  c.after.next_step = 3;
  c.after.state = std::move(state);
  c.after.last_first_step = 0;
  c.after.last_steps = 3;
  c.after.last_digest = "digest-1";
  c.after.last_answer = std::string("\x01\x00\x02", 3);
  return c;
}

// The chunk after `s`, made under `generation`.
SessionCommit Next(const std::string& key, uint64_t generation,
                   const StoredSession& s, std::vector<float> state) {
  SessionCommit c;
  c.key = key;
  c.generation = generation;
  c.from_step = s.next_step;
  c.after = s;
  c.after.next_step = s.next_step + 2;
  c.after.state = std::move(state);
  c.after.last_first_step = s.next_step;
  c.after.last_steps = 2;
  c.after.last_digest = "digest-next";
  c.after.last_answer = "answer-next";
  return c;
}

std::vector<CommitOutcome> MustCommit(RedisSessions& store,
                                      std::vector<SessionCommit> commits) {
  auto outcomes = store.CommitAll(commits);
  EXPECT_TRUE(outcomes.ok()) << outcomes.status();
  return outcomes.ok() ? *outcomes : std::vector<CommitOutcome>{};
}

TEST(RedisSessionsTest, TheFirstCommitCreatesAndTakeOverReadsItBack) {
  testing::RedisServer redis;
  RedisSessions store(At(redis));
  const std::string key = SessionKey("rnnserve:session:", "token-1");
  EXPECT_EQ(store.TakeOver(key, "sine_rnn", "owner-a").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(MustCommit(store, {First(key, {0.5f, -1.25f, 3e-8f})}),
              ElementsAre(CommitOutcome::kCommitted));
  auto s = store.TakeOver(key, "sine_rnn", "owner-a");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->generation, 2u);  // 1 at creation, 2 for this attach.
  EXPECT_EQ(s->next_step, 3u);
  EXPECT_THAT(s->state, ElementsAre(0.5f, -1.25f, 3e-8f));
  EXPECT_EQ(s->last_first_step, 0u);
  EXPECT_EQ(s->last_steps, 3u);
  EXPECT_EQ(s->last_digest, "digest-1");
  EXPECT_EQ(s->last_answer, std::string("\x01\x00\x02", 3));
}

TEST(RedisSessionsTest, ATakeOverFencesThePreviousHolder) {
  testing::RedisServer redis;
  RedisSessions replica_a(At(redis));
  RedisSessions replica_b(At(redis));
  const std::string key = SessionKey("rnnserve:session:", "token-2");
  MustCommit(replica_a, {First(key, {1.0f})});
  auto a = replica_a.TakeOver(key, "sine_rnn", "owner-a");
  ASSERT_TRUE(a.ok());
  auto b = replica_b.TakeOver(key, "sine_rnn", "owner-a");
  ASSERT_TRUE(b.ok());
  EXPECT_GT(b->generation, a->generation);
  // The older holder's chunk finishes late: it must not count.
  EXPECT_THAT(MustCommit(replica_a, {Next(key, a->generation, *a, {7.0f})}),
              ElementsAre(CommitOutcome::kTakenOver));
  EXPECT_THAT(MustCommit(replica_b, {Next(key, b->generation, *b, {9.0f})}),
              ElementsAre(CommitOutcome::kCommitted));
  auto now = replica_a.Peek(key, "sine_rnn", "owner-a");
  ASSERT_TRUE(now.ok());
  EXPECT_THAT(now->state, ElementsAre(9.0f));
  EXPECT_EQ(now->next_step, 5u);
  EXPECT_EQ(now->generation, b->generation);  // Peek does not attach.
}

TEST(RedisSessionsTest, ACommitFromAnotherPositionIsRefused) {
  testing::RedisServer redis;
  RedisSessions store(At(redis));
  const std::string key = SessionKey("rnnserve:session:", "token-3");
  MustCommit(store, {First(key, {1.0f})});
  auto s = store.TakeOver(key, "sine_rnn", "owner-a");
  ASSERT_TRUE(s.ok());
  SessionCommit stale = Next(key, s->generation, *s, {2.0f});
  stale.from_step = 0;
  EXPECT_THAT(MustCommit(store, {stale}), ElementsAre(CommitOutcome::kMoved));
}

TEST(RedisSessionsTest, AnotherOwnerSeesNothingAndAnotherModelIsNamed) {
  testing::RedisServer redis;
  RedisSessions store(At(redis));
  const std::string key = SessionKey("rnnserve:session:", "token-4");
  MustCommit(store, {First(key, {1.0f})});
  const absl::Status unknown =
      store
          .TakeOver(SessionKey("rnnserve:session:", "other"), "sine_rnn",
                    "owner-a")
          .status();
  const absl::Status stranger =
      store.TakeOver(key, "sine_rnn", "owner-b").status();
  EXPECT_EQ(stranger.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(stranger.message(), unknown.message());
  const absl::Status model = store.TakeOver(key, "lstm", "owner-a").status();
  EXPECT_EQ(model.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.message(), HasSubstr("\"sine_rnn\""));
}

TEST(RedisSessionsTest, ABatchOfCommitsIsOneRoundTrip) {
  testing::RedisServer redis;
  RedisSessions store(At(redis));
  // Warm up: the connection and the scripts.
  MustCommit(store, {First(SessionKey("p:", "warm"), {0.0f})});
  std::vector<SessionCommit> batch;
  for (int i = 0; i < 64; ++i) {
    batch.push_back(
        First(SessionKey("p:", absl::StrCat("t", i)), {static_cast<float>(i)}));
  }
  const int64_t before = store.round_trips();
  auto outcomes = MustCommit(store, batch);
  EXPECT_EQ(store.round_trips() - before, 1);
  ASSERT_EQ(outcomes.size(), 64u);
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(outcomes[i], CommitOutcome::kCommitted) << i;
    auto s = store.Peek(SessionKey("p:", absl::StrCat("t", i)), "sine_rnn",
                        "owner-a");
    ASSERT_TRUE(s.ok());
    EXPECT_THAT(s->state, ElementsAre(static_cast<float>(i)));
  }
}

TEST(RedisSessionsTest, KeysAreHashesOfTokensAndExpireWhenIdle) {
  testing::RedisServer redis;
  RedisSessions::Options options = At(redis);
  options.idle_ttl = absl::Seconds(30);
  RedisSessions store(options);
  const std::string token = "the-secret-token-value";
  MustCommit(store, {First(SessionKey("rnnserve:session:", token), {1.0f})});
  auto inspector = Inspector(redis);
  ASSERT_NE(inspector, nullptr);
  auto keys = inspector->Run({"KEYS", "*"});
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->elements.size(), 1u);
  const std::string& key = keys->elements[0].str;
  EXPECT_THAT(key, Not(HasSubstr(token)));
  EXPECT_EQ(key.size(), std::string("rnnserve:session:").size() + 64);
  auto fields = inspector->Run({"HGETALL", key});
  ASSERT_TRUE(fields.ok());
  for (const RedisReply& f : fields->elements) {
    EXPECT_THAT(f.str, Not(HasSubstr(token)));
  }
  auto ttl = inspector->Run({"PTTL", key});
  ASSERT_TRUE(ttl.ok());
  EXPECT_GT(ttl->integer, 25000);
  EXPECT_LE(ttl->integer, 30000);
  // An attach refreshes the expiry.
  ASSERT_TRUE(inspector->Run({"PEXPIRE", key, "1000"}).ok());
  ASSERT_TRUE(store.TakeOver(key, "sine_rnn", "owner-a").ok());
  EXPECT_GT(inspector->Run({"PTTL", key})->integer, 25000);
}

TEST(RedisSessionsTest, EndDeletesOnlyForTheHolder) {
  testing::RedisServer redis;
  RedisSessions store(At(redis));
  const std::string key = SessionKey("p:", "token-5");
  MustCommit(store, {First(key, {1.0f})});
  auto s = store.TakeOver(key, "sine_rnn", "owner-a");
  ASSERT_TRUE(s.ok());
  auto stale = store.End(key, s->generation - 1);
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(*stale);
  auto ended = store.End(key, s->generation);
  ASSERT_TRUE(ended.ok());
  EXPECT_TRUE(*ended);
  EXPECT_EQ(store.Peek(key, "sine_rnn", "owner-a").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(RedisSessionsTest, ScriptsForgottenByRedisAreLoadedAgain) {
  testing::RedisServer redis;
  RedisSessions store(At(redis));
  MustCommit(store, {First(SessionKey("p:", "a"), {1.0f})});
  ASSERT_TRUE(Inspector(redis)->Run({"SCRIPT", "FLUSH"}).ok());
  EXPECT_THAT(MustCommit(store, {First(SessionKey("p:", "b"), {2.0f})}),
              ElementsAre(CommitOutcome::kCommitted));
  EXPECT_TRUE(store.Peek(SessionKey("p:", "b"), "sine_rnn", "owner-a").ok());
}

TEST(RedisSessionsTest, RedisDownIsUnavailableAndARestartWithoutPersistence) {
  testing::RedisServer redis;
  RedisSessions store(At(redis));
  const std::string key = SessionKey("p:", "token-6");
  MustCommit(store, {First(key, {1.0f})});
  redis.Kill();
  auto down = store.TakeOver(key, "sine_rnn", "owner-a");
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(down.status().message(), HasSubstr("Redis"));
  auto commit = store.CommitAll(std::vector<SessionCommit>{First(key, {2.0f})});
  EXPECT_EQ(commit.status().code(), absl::StatusCode::kUnavailable);
  redis.Start();
  // No persistence: the session is gone, and says so.
  EXPECT_EQ(store.TakeOver(key, "sine_rnn", "owner-a").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(RedisSessionsTest, AStalledRedisIsUnavailableNotAHang) {
  testing::RedisServer redis;
  RedisSessions::Options options = At(redis);
  options.connection.io_timeout = absl::Milliseconds(200);
  RedisSessions store(options);
  const std::string key = SessionKey("p:", "token-7");
  MustCommit(store, {First(key, {1.0f})});
  redis.Pause();
  auto stalled = store.TakeOver(key, "sine_rnn", "owner-a");
  redis.Resume();
  EXPECT_EQ(stalled.status().code(), absl::StatusCode::kUnavailable);
  // The broken connection is not reused; the next call works.
  EXPECT_TRUE(store.TakeOver(key, "sine_rnn", "owner-a").ok());
}

TEST(RedisSessionsTest, AFullRedisRefusesTheCommitItCannotStore) {
  testing::RedisServer redis(
      {"--maxmemory", "3mb", "--maxmemory-policy", "noeviction"});
  RedisSessions store(At(redis));
  const std::vector<float> big(64 * 1024, 1.0f);  // 256 KiB of state.
  std::vector<CommitOutcome> outcomes;
  for (int i = 0; i < 16; ++i) {
    auto o = store.CommitAll(std::vector<SessionCommit>{
        First(SessionKey("p:", absl::StrCat(i)), big)});
    ASSERT_TRUE(o.ok()) << o.status();
    outcomes.push_back((*o)[0]);
  }
  EXPECT_EQ(outcomes.front(), CommitOutcome::kCommitted);
  EXPECT_EQ(outcomes.back(), CommitOutcome::kRefused);
}

}  // namespace
}  // namespace rnnserve::sessions
