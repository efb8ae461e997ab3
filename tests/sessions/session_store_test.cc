// The rules every session store keeps (session_store.h), checked on both:
// the store in memory and the store in a real redis-server. Then what only
// the memory store does itself: expiry by its clock.
#include "server/sessions/session_store.h"

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/sessions/memory_sessions.h"
#include "server/sessions/redis_sessions.h"
#include "tests/testing/redis_server.h"

namespace rnnserve::sessions {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Counts events per kind, and keeps the model versions they name.
class CountingObserver : public SessionObserver {
 public:
  using Name = const std::string&;
  void OnCreated(Name m, Name v) override { Add("created", m, v); }
  void OnResumed(Name m, Name v) override { Add("resumed", m, v); }
  void OnExpired(Name m, Name v) override { Add("expired", m, v); }
  void OnRefused(Name m, Name v) override { Add("refused", m, v); }
  void OnEnded(Name m, Name v) override { Add("ended", m, v); }
  void OnTakenOver(Name m, Name v) override { Add("taken over", m, v); }
  int count(const std::string& kind) {
    absl::MutexLock lock(&mu_);
    return counts_[kind];
  }
  // The version each event of `kind` named, in order.
  std::vector<std::string> versions(const std::string& kind) {
    absl::MutexLock lock(&mu_);
    return versions_[kind];
  }

 private:
  void Add(const std::string& kind, const std::string& model,
           const std::string& version) {
    absl::MutexLock lock(&mu_);
    ++counts_[kind];
    versions_[kind].push_back(version);
    EXPECT_FALSE(model.empty());
  }
  absl::Mutex mu_;
  std::map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<std::string>> versions_
      ABSL_GUARDED_BY(mu_);
};

// One chunk of `steps` steps on `s` as its call holds it, leaving `value`
// in every state float, with `answer` as its outputs.
struct Chunk {
  Chunk(const AttachedSession& s, uint32_t steps, float value)
      : state(s.record.state.size(), value), answer(steps, value) {
    commit.key = s.key;
    commit.generation = s.record.generation;
    commit.from_step = s.record.next_step;
    commit.model = s.record.model;
    // As the service commits: the version the session runs on.
    commit.model_version = s.record.model_version;
    commit.owner = s.record.owner;
    commit.next_step = s.record.next_step + steps;
    commit.state = state;
    commit.steps = steps;
    commit.digest = "digest-" + std::to_string(value);
    commit.answer = answer;
  }
  std::vector<float> state;
  std::vector<float> answer;
  SessionCommit commit;
};

enum class Backend { kMemory, kRedis };

class SessionStoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  std::unique_ptr<SessionStore> NewStore(int64_t max = 100,
                                         int64_t per_owner = 0) {
    SessionLimits limits;
    limits.idle_ttl = absl::Minutes(5);
    limits.max_sessions = max;
    limits.max_sessions_per_owner = per_owner;
    if (GetParam() == Backend::kMemory) {
      return std::make_unique<MemorySessions>(limits, clock_, &observer_);
    }
    if (redis_ == nullptr) redis_ = std::make_unique<testing::RedisServer>();
    RedisSessions::Options options;
    options.connection.address = {"127.0.0.1", redis_->port(), 0};
    options.limits = limits;
    return std::make_unique<RedisSessions>(options, &observer_);
  }

  // A session whose first chunk (3 steps, state 1) is committed.
  AttachedSession Committed(SessionStore& store,
                            const std::string& owner = "") {
    absl::StatusOr<AttachedSession> s = store.Create("m", 2, owner);
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return {};
    Chunk first(*s, 3, 1.0f);
    EXPECT_TRUE(store.CommitAll({&first.commit, 1})[0].ok());
    return *s;
  }

  FakeClock clock_{absl::FromUnixSeconds(1'000'000)};
  CountingObserver observer_;
  std::unique_ptr<testing::RedisServer> redis_;
};

TEST_P(SessionStoreTest, ASessionExistsFromItsFirstCommit) {
  auto store = NewStore();
  absl::StatusOr<AttachedSession> s = store->Create("m", 2, "");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->record.generation, 0u);
  EXPECT_THAT(s->record.state, ElementsAre(0.0f, 0.0f));
  EXPECT_GE(s->token.size(), 40u);
  // Not yet committed: nobody finds it.
  EXPECT_EQ(store->TakeOver(s->token, "m", "").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(*store->Count(), 0);
  Chunk first(*s, 3, 1.5f);
  ASSERT_TRUE(store->CommitAll({&first.commit, 1})[0].ok());
  EXPECT_EQ(*store->Count(), 1);
  absl::StatusOr<AttachedSession> again = store->TakeOver(s->token, "m", "");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->key, s->key);
  EXPECT_EQ(again->record.generation, 2u);  // Created 1, taken over 2.
  EXPECT_EQ(again->record.next_step, 3u);
  EXPECT_THAT(again->record.state, ElementsAre(1.5f, 1.5f));
  EXPECT_EQ(again->record.last_from, 0u);
  EXPECT_EQ(again->record.last_steps, 3u);
  EXPECT_EQ(again->record.last_digest, "digest-1.500000");
  EXPECT_THAT(again->record.last_answer, ElementsAre(1.5f, 1.5f, 1.5f));
  EXPECT_EQ(observer_.count("created"), 1);
  EXPECT_EQ(observer_.count("resumed"), 1);
}

TEST_P(SessionStoreTest, ASessionKeepsTheModelVersionItStartedOn) {
  auto store = NewStore();
  absl::StatusOr<AttachedSession> s = store->Create("m", 2, "");
  ASSERT_TRUE(s.ok()) << s.status();
  Chunk first(*s, 3, 1.0f);
  first.commit.model_version = "7";
  ASSERT_TRUE(store->CommitAll({&first.commit, 1})[0].ok());
  absl::StatusOr<AttachedSession> again = store->TakeOver(s->token, "m", "");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->record.model_version, "7");
  // Read on creation only: a later commit does not move it.
  Chunk second(*again, 1, 2.0f);
  second.commit.model_version = "8";
  ASSERT_TRUE(store->CommitAll({&second.commit, 1})[0].ok());
  absl::StatusOr<AttachedSession> third = store->TakeOver(s->token, "m", "");
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->record.model_version, "7");
  // A session committed without a version reads back without one.
  const AttachedSession plain = Committed(*store);
  absl::StatusOr<AttachedSession> back = store->TakeOver(plain.token, "m", "");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->record.model_version, "");
}

TEST_P(SessionStoreTest, SessionsAreCountedByTheVersionTheyRunOn) {
  auto store = NewStore();
  auto start = [&](const std::string& model, const std::string& version) {
    absl::StatusOr<AttachedSession> s = store->Create(model, 2, "");
    EXPECT_TRUE(s.ok()) << s.status();
    Chunk first(*s, 1, 1.0f);
    first.commit.model = model;
    first.commit.model_version = version;
    EXPECT_TRUE(store->CommitAll({&first.commit, 1})[0].ok());
    return *s;
  };
  start("m", "1");
  const AttachedSession second = start("m", "1");
  start("m", "2");
  start("other", "1");
  EXPECT_EQ(*store->CountOn("m", "1"), 2);
  EXPECT_EQ(*store->CountOn("m", "2"), 1);
  EXPECT_EQ(*store->CountOn("other", "1"), 1);
  EXPECT_EQ(*store->CountOn("m", "3"), 0);
  // An ended session no longer holds its version.
  absl::StatusOr<AttachedSession> held = store->TakeOver(second.token, "m", "");
  ASSERT_TRUE(held.ok()) << held.status();
  Chunk end(*held, 0, 0.0f);
  end.commit.end_session = true;
  ASSERT_TRUE(store->CommitAll({&end.commit, 1})[0].ok());
  EXPECT_EQ(*store->CountOn("m", "1"), 1);
}

// One pass gives every version of a model that holds sessions, with its
// count: what the repository's drain check reads once per model.
TEST_P(SessionStoreTest, SessionsOfAModelAreCountedPerVersionInOnePass) {
  auto store = NewStore();
  auto start = [&](const std::string& model, const std::string& version) {
    absl::StatusOr<AttachedSession> s = store->Create(model, 2, "");
    EXPECT_TRUE(s.ok()) << s.status();
    Chunk first(*s, 1, 1.0f);
    first.commit.model = model;
    first.commit.model_version = version;
    EXPECT_TRUE(store->CommitAll({&first.commit, 1})[0].ok());
    return *s;
  };
  using Counts = std::map<std::string, int64_t>;
  EXPECT_EQ(*store->CountByVersion("m"), Counts());
  start("m", "1");
  const AttachedSession ended = start("m", "1");
  start("m", "1");
  start("m", "2");
  start("m", "10");
  start("other", "1");
  start("other", "3");
  // Created but never committed: not held yet.
  ASSERT_TRUE(store->Create("m", 2, "").ok());
  EXPECT_EQ(*store->CountByVersion("m"),
            (Counts{{"1", 3}, {"2", 1}, {"10", 1}}));
  EXPECT_EQ(*store->CountByVersion("other"), (Counts{{"1", 1}, {"3", 1}}));
  EXPECT_EQ(*store->CountByVersion("none"), Counts());
  absl::StatusOr<AttachedSession> held = store->TakeOver(ended.token, "m", "");
  ASSERT_TRUE(held.ok()) << held.status();
  Chunk end(*held, 0, 0.0f);
  end.commit.end_session = true;
  ASSERT_TRUE(store->CommitAll({&end.commit, 1})[0].ok());
  EXPECT_EQ(*store->CountByVersion("m"),
            (Counts{{"1", 2}, {"2", 1}, {"10", 1}}));
  // CountOn reads the same counts.
  EXPECT_EQ(*store->CountOn("m", "1"), 2);
  EXPECT_EQ(*store->CountOn("m", "3"), 0);
}

// Every event names the version the session runs on, as the store recorded
// it, so that metrics count it under that version.
TEST_P(SessionStoreTest, EventsNameTheSessionsModelVersion) {
  auto store = NewStore(/*max=*/1);
  absl::StatusOr<AttachedSession> s = store->Create("m", 2, "");
  ASSERT_TRUE(s.ok()) << s.status();
  s->record.model_version = "7";  // As the service sets it.
  Chunk first(*s, 3, 1.0f);
  ASSERT_TRUE(store->CommitAll({&first.commit, 1})[0].ok());
  absl::StatusOr<AttachedSession> a = store->TakeOver(s->token, "m", "");
  absl::StatusOr<AttachedSession> b = store->TakeOver(s->token, "m", "");
  ASSERT_TRUE(a.ok() && b.ok());
  Chunk fenced(*a, 1, 2.0f);
  EXPECT_EQ(store->CommitAll({&fenced.commit, 1})[0].code(),
            absl::StatusCode::kAborted);
  // The store is full: a new session on version 8 is refused, by the
  // commit or (the memory store) by Create, before any version is known.
  absl::StatusOr<AttachedSession> other = store->Create("m", 2, "");
  if (other.ok()) {
    other->record.model_version = "8";
    Chunk refused(*other, 1, 1.0f);
    EXPECT_EQ(store->CommitAll({&refused.commit, 1})[0].code(),
              absl::StatusCode::kResourceExhausted);
  }
  Chunk last(*b, 0, 0.0f);
  last.commit.end_session = true;
  ASSERT_TRUE(store->CommitAll({&last.commit, 1})[0].ok());
  EXPECT_THAT(observer_.versions("created"), ElementsAre("7"));
  EXPECT_THAT(observer_.versions("resumed"), ElementsAre("7", "7"));
  EXPECT_THAT(observer_.versions("taken over"), ElementsAre("7"));
  EXPECT_THAT(observer_.versions("ended"), ElementsAre("7"));
  EXPECT_THAT(observer_.versions("refused"),
              ElementsAre(other.ok() ? "8" : ""));
}

TEST_P(SessionStoreTest, ASessionCreatedUnderAGivenTokenIsFoundByIt) {
  auto store = NewStore();
  const std::string token = "oip:owner-a:42";
  absl::StatusOr<AttachedSession> s =
      store->CreateWithToken(token, "m", 2, "owner-a");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->token, token);
  EXPECT_EQ(s->record.generation, 0u);
  EXPECT_THAT(s->record.state, ElementsAre(0.0f, 0.0f));
  // Not yet committed: nobody finds it.
  EXPECT_EQ(store->TakeOver(token, "m", "owner-a").status().code(),
            absl::StatusCode::kNotFound);
  Chunk first(*s, 3, 2.5f);
  ASSERT_TRUE(store->CommitAll({&first.commit, 1})[0].ok());
  // Any store (replica) that derives the token finds it; only its owner.
  absl::StatusOr<AttachedSession> again =
      store->TakeOver(token, "m", "owner-a");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->key, s->key);
  EXPECT_EQ(again->record.next_step, 3u);
  EXPECT_THAT(again->record.state, ElementsAre(2.5f, 2.5f));
  EXPECT_EQ(store->TakeOver(token, "m", "owner-b").status().code(),
            absl::StatusCode::kNotFound);
  // Creating it again does not overwrite it: the first commit is refused.
  absl::StatusOr<AttachedSession> twice =
      store->CreateWithToken(token, "m", 2, "owner-a");
  ASSERT_TRUE(twice.ok()) << twice.status();
  Chunk clobber(*twice, 1, 9.0f);
  EXPECT_EQ(store->CommitAll({&clobber.commit, 1})[0].code(),
            absl::StatusCode::kAborted);
  absl::StatusOr<AttachedSession> kept = store->TakeOver(token, "m", "owner-a");
  ASSERT_TRUE(kept.ok());
  EXPECT_THAT(kept->record.state, ElementsAre(2.5f, 2.5f));
}

TEST_P(SessionStoreTest, TheNewestTakeOverWinsAndFencesTheOlder) {
  auto store = NewStore();
  const AttachedSession created = Committed(*store);
  absl::StatusOr<AttachedSession> a = store->TakeOver(created.token, "m", "");
  absl::StatusOr<AttachedSession> b = store->TakeOver(created.token, "m", "");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_GT(b->record.generation, a->record.generation);
  Chunk from_a(*a, 2, 7.0f);
  const absl::Status refused = store->CommitAll({&from_a.commit, 1})[0];
  EXPECT_EQ(refused.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(refused.message(), HasSubstr("session taken over"));
  Chunk from_b(*b, 4, 9.0f);
  ASSERT_TRUE(store->CommitAll({&from_b.commit, 1})[0].ok());
  absl::StatusOr<AttachedSession> now = store->TakeOver(created.token, "m", "");
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->record.next_step, 7u);  // 3 + 4: A's chunk never counted.
  EXPECT_THAT(now->record.state, ElementsAre(9.0f, 9.0f));
  EXPECT_EQ(observer_.count("taken over"), 1);
}

TEST_P(SessionStoreTest, ACommitFromAnotherPositionIsRefused) {
  auto store = NewStore();
  const AttachedSession created = Committed(*store);
  absl::StatusOr<AttachedSession> s = store->TakeOver(created.token, "m", "");
  ASSERT_TRUE(s.ok());
  Chunk chunk(*s, 2, 1.0f);
  chunk.commit.from_step = 1;
  EXPECT_EQ(store->CommitAll({&chunk.commit, 1})[0].code(),
            absl::StatusCode::kInternal);
}

TEST_P(SessionStoreTest, AnotherOwnerSeesNothingAndAnotherModelIsNamed) {
  auto store = NewStore();
  const AttachedSession created = Committed(*store, "owner-a");
  const absl::Status stranger =
      store->TakeOver(created.token, "m", "owner-b").status();
  const absl::Status unknown =
      store->TakeOver("no-such-token", "m", "owner-a").status();
  EXPECT_EQ(stranger.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(stranger, unknown) << "another owner's session must look unknown";
  const absl::Status model =
      store->TakeOver(created.token, "other", "owner-a").status();
  EXPECT_EQ(model.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.message(), HasSubstr("\"m\""));
  EXPECT_TRUE(store->TakeOver(created.token, "m", "owner-a").ok());
}

TEST_P(SessionStoreTest, AnEndingCommitDeletesTheSession) {
  auto store = NewStore();
  const AttachedSession created = Committed(*store);
  absl::StatusOr<AttachedSession> s = store->TakeOver(created.token, "m", "");
  ASSERT_TRUE(s.ok());
  Chunk last(*s, 0, 0.0f);
  last.commit.end_session = true;
  ASSERT_TRUE(store->CommitAll({&last.commit, 1})[0].ok());
  EXPECT_EQ(store->TakeOver(created.token, "m", "").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(*store->Count(), 0);
  EXPECT_EQ(observer_.count("ended"), 1);
  // A commit of a call that still held it finds it gone.
  Chunk late(*s, 1, 0.0f);
  EXPECT_EQ(store->CommitAll({&late.commit, 1})[0].code(),
            absl::StatusCode::kNotFound);
}

TEST_P(SessionStoreTest, AFullStoreRefusesNewSessionsAndEvictsNone) {
  auto store = NewStore(/*max=*/3);
  std::vector<AttachedSession> held;
  for (int i = 0; i < 3; ++i) held.push_back(Committed(*store));
  // Create may already refuse; the first commit must.
  absl::StatusOr<AttachedSession> fourth = store->Create("m", 2, "");
  if (fourth.ok()) {
    Chunk first(*fourth, 1, 1.0f);
    const absl::Status refused = store->CommitAll({&first.commit, 1})[0];
    EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(refused.message(), HasSubstr("--max-sessions"));
  } else {
    EXPECT_EQ(fourth.status().code(), absl::StatusCode::kResourceExhausted);
  }
  EXPECT_EQ(observer_.count("refused"), 1);
  for (const AttachedSession& s : held) {
    EXPECT_TRUE(store->TakeOver(s.token, "m", "").ok());
  }
  // Ending one makes room.
  absl::StatusOr<AttachedSession> s = store->TakeOver(held[0].token, "m", "");
  Chunk end(*s, 0, 0.0f);
  end.commit.end_session = true;
  ASSERT_TRUE(store->CommitAll({&end.commit, 1})[0].ok());
  Committed(*store);
  EXPECT_EQ(*store->Count(), 3);
}

TEST_P(SessionStoreTest, EachOwnerHasAQuota) {
  auto store = NewStore(/*max=*/100, /*per_owner=*/2);
  Committed(*store, "a");
  Committed(*store, "a");
  Committed(*store, "b");
  Committed(*store, "");  // No owner: no quota.
  absl::StatusOr<AttachedSession> third = store->Create("m", 2, "a");
  absl::Status refused = third.status();
  if (third.ok()) {
    Chunk first(*third, 1, 1.0f);
    refused = store->CommitAll({&first.commit, 1})[0];
  }
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("--max-sessions-per-token"));
  Committed(*store, "b");
  EXPECT_EQ(*store->Count(), 5);
}

TEST_P(SessionStoreTest, EachCommitOfABatchHasItsOwnOutcome) {
  auto store = NewStore();
  const AttachedSession one = Committed(*store);
  const AttachedSession two = Committed(*store);
  absl::StatusOr<AttachedSession> a = store->TakeOver(one.token, "m", "");
  absl::StatusOr<AttachedSession> b = store->TakeOver(two.token, "m", "");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(store->TakeOver(two.token, "m", "").ok());  // Fences b.
  absl::StatusOr<AttachedSession> fresh = store->Create("m", 2, "");
  ASSERT_TRUE(fresh.ok());
  Chunk ca(*a, 1, 1.0f), cb(*b, 1, 2.0f), cf(*fresh, 1, 3.0f);
  const std::vector<SessionCommit> batch = {ca.commit, cb.commit, cf.commit};
  const std::vector<absl::Status> outcomes = store->CommitAll(batch);
  ASSERT_EQ(outcomes.size(), 3u);
  EXPECT_TRUE(outcomes[0].ok()) << outcomes[0];
  EXPECT_EQ(outcomes[1].code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(outcomes[2].ok()) << outcomes[2];
  EXPECT_EQ(*store->Count(), 3);
}

// Calls racing for one session: each takes it over and commits one step;
// a commit counts only under the newest generation, so the step counter
// is exactly the number of commits that succeeded.
TEST_P(SessionStoreTest, RacingTakeOversApplyEachCommitAtMostOnce) {
  auto store = NewStore();
  const AttachedSession created = Committed(*store);
  constexpr int kThreads = 6;
  constexpr int kRounds = 60;
  std::vector<int> applied(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        absl::StatusOr<AttachedSession> s =
            store->TakeOver(created.token, "m", "");
        ASSERT_TRUE(s.ok()) << s.status();
        Chunk chunk(*s, 1, static_cast<float>(t));
        const absl::Status status = store->CommitAll({&chunk.commit, 1})[0];
        if (status.ok()) {
          ++applied[t];
        } else {
          ASSERT_EQ(status.code(), absl::StatusCode::kAborted) << status;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  int total = 0;
  for (int n : applied) total += n;
  absl::StatusOr<AttachedSession> end = store->TakeOver(created.token, "m", "");
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->record.next_step, 3u + total);
  EXPECT_GT(total, 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, SessionStoreTest,
                         ::testing::Values(Backend::kMemory, Backend::kRedis),
                         [](const auto& info) {
                           return info.param == Backend::kMemory ? "Memory"
                                                                 : "Redis";
                         });

class MemorySessionsTest : public ::testing::Test {
 protected:
  FakeClock clock_{absl::FromUnixSeconds(1'000'000)};
  CountingObserver observer_;
};

TEST_F(MemorySessionsTest, SessionsExpireAfterTheTtlWithoutUse) {
  SessionLimits limits;
  limits.idle_ttl = absl::Minutes(5);
  MemorySessions store(limits, clock_, &observer_);
  absl::StatusOr<AttachedSession> s = store.Create("m", 1, "");
  ASSERT_TRUE(s.ok());
  s->record.model_version = "3";
  Chunk first(*s, 1, 1.0f);
  ASSERT_TRUE(store.CommitAll({&first.commit, 1})[0].ok());
  // Each use refreshes the TTL.
  clock_.Advance(absl::Minutes(4));
  ASSERT_TRUE(store.TakeOver(s->token, "m", "").ok());
  clock_.Advance(absl::Minutes(4));
  EXPECT_EQ(store.Reap(), 0);
  ASSERT_TRUE(store.TakeOver(s->token, "m", "").ok());
  clock_.Advance(absl::Minutes(5));
  // Refused at once, before any reaper runs.
  EXPECT_EQ(store.TakeOver(s->token, "m", "").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(observer_.count("expired"), 1);
  EXPECT_THAT(observer_.versions("expired"), ElementsAre("3"));
  EXPECT_EQ(*store.Count(), 0);
}

TEST_F(MemorySessionsTest, TheReaperDropsExpiredSessions) {
  SessionLimits limits;
  limits.idle_ttl = absl::Minutes(5);
  MemorySessions store(limits, clock_, &observer_);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<AttachedSession> s = store.Create("m", 1, "");
    ASSERT_TRUE(s.ok());
    s->record.model_version = std::to_string(i);
    Chunk first(*s, 1, 1.0f);
    ASSERT_TRUE(store.CommitAll({&first.commit, 1})[0].ok());
  }
  clock_.Advance(absl::Minutes(5));
  EXPECT_EQ(store.Reap(), 3);
  EXPECT_EQ(*store.Count(), 0);
  EXPECT_EQ(observer_.count("expired"), 3);
  EXPECT_THAT(observer_.versions("expired"),
              ::testing::UnorderedElementsAre("0", "1", "2"));
}

TEST(PositionMismatchTest, CarriesThePositionForMachines) {
  const absl::Status status = PositionMismatch(40, 30);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("at step 40"));
  EXPECT_EQ(PositionOf(status), 40u);
  EXPECT_EQ(PositionOf(absl::FailedPreconditionError("x")), std::nullopt);
}

TEST(TokenForLogTest, ShowsOnlyAPrefix) {
  const std::string token(43, 'x');
  EXPECT_EQ(TokenForLog("abcdefghijkl"), "abcdef…");
  EXPECT_LT(TokenForLog(token).size(), 12u);
}

}  // namespace
}  // namespace rnnserve::sessions
