#include "server/sessions/session_store.h"

#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/sessions/token.h"

namespace rnnserve::sessions {
namespace {

using ::testing::HasSubstr;

// Counts events per kind.
class CountingObserver : public SessionObserver {
 public:
  void OnCreated(const std::string& m) override { Add("created", m); }
  void OnResumed(const std::string& m) override { Add("resumed", m); }
  void OnExpired(const std::string& m) override { Add("expired", m); }
  void OnRefused(const std::string& m) override { Add("refused", m); }
  void OnEnded(const std::string& m) override { Add("ended", m); }
  int count(const std::string& kind) {
    absl::MutexLock lock(&mu_);
    return counts_[kind];
  }

 private:
  void Add(const std::string& kind, const std::string& model) {
    absl::MutexLock lock(&mu_);
    ++counts_[kind];
    EXPECT_FALSE(model.empty());
  }
  absl::Mutex mu_;
  std::map<std::string, int> counts_;
};

class SessionStoreTest : public ::testing::Test {
 protected:
  SessionStore::Options Options(int64_t max = 100) {
    SessionStore::Options o;
    o.idle_ttl = absl::Minutes(5);
    o.max_sessions = max;
    return o;
  }
  // A new session whose first chunk succeeded.
  static Lease NewSession(SessionStore& store, const std::string& owner = "") {
    absl::StatusOr<Lease> lease = store.Create("m", 1, owner);
    EXPECT_TRUE(lease.ok()) << lease.status();
    if (!lease.ok()) return Lease();
    lease->Commit();
    return *std::move(lease);
  }
  FakeClock clock_{absl::FromUnixSeconds(1'000'000)};
  CountingObserver observer_;
};

TEST_F(SessionStoreTest, TokensAreLongRandomAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    absl::StatusOr<std::string> token = NewToken();
    ASSERT_TRUE(token.ok());
    std::string bytes;
    ASSERT_TRUE(absl::WebSafeBase64Unescape(*token, &bytes));
    EXPECT_EQ(bytes.size(), 32u);  // 256 random bits.
    EXPECT_TRUE(seen.insert(*token).second);
  }
}

TEST_F(SessionStoreTest, StateSurvivesReleaseAndResume) {
  SessionStore store(Options(), clock_, &observer_);
  std::string token;
  {
    absl::StatusOr<Lease> lease = store.Create("m", 3);
    ASSERT_TRUE(lease.ok());
    EXPECT_EQ((*lease)->state, std::vector<float>(3, 0.0f));
    (*lease)->state = {1, 2, 3};
    (*lease)->next_step = 7;
    lease->Commit();
    token = (*lease)->token;
  }
  absl::StatusOr<Lease> again = store.Resume(token, "m");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->state, (std::vector<float>{1, 2, 3}));
  EXPECT_EQ((*again)->next_step, 7u);
  EXPECT_EQ(observer_.count("created"), 1);
  EXPECT_EQ(observer_.count("resumed"), 1);
}

TEST_F(SessionStoreTest, OneCallAtATime) {
  SessionStore store(Options(), clock_, &observer_);
  absl::StatusOr<Lease> lease = NewSession(store);
  ASSERT_TRUE(*lease);
  absl::StatusOr<Lease> second = store.Resume((*lease)->token, "m");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("session_token"));
  const std::string token = (*lease)->token;
  lease->Release();
  EXPECT_TRUE(store.Resume(token, "m").ok());
}

TEST_F(SessionStoreTest, UnknownTokenAndWrongModel) {
  SessionStore store(Options(), clock_, &observer_);
  EXPECT_EQ(store.Resume("nope", "m").status().code(),
            absl::StatusCode::kNotFound);
  std::string token;
  {
    Lease lease = NewSession(store);
    ASSERT_TRUE(lease);
    token = lease->token;
  }
  absl::StatusOr<Lease> other = store.Resume(token, "other");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("\"m\""));
}

TEST_F(SessionStoreTest, IdleSessionsExpireAfterTheTtl) {
  SessionStore store(Options(), clock_, &observer_);
  std::string token;
  {
    Lease lease = NewSession(store);
    ASSERT_TRUE(lease);
    token = lease->token;
  }
  clock_.Advance(absl::Minutes(5) - absl::Seconds(1));
  {
    absl::StatusOr<Lease> lease = store.Resume(token, "m");
    ASSERT_TRUE(lease.ok()) << lease.status();
  }  // Released now: the idle clock restarts.
  clock_.Advance(absl::Minutes(5) - absl::Seconds(1));
  EXPECT_EQ(store.Reap(), 0);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(store.Reap(), 1);
  EXPECT_EQ(store.Resume(token, "m").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(observer_.count("expired"), 1);
  EXPECT_EQ(store.size(), 0);
}

TEST_F(SessionStoreTest, ExpiredTokenIsRefusedEvenBeforeTheReaperRuns) {
  SessionStore store(Options(), clock_, &observer_);
  std::string token;
  {
    Lease lease = NewSession(store);
    ASSERT_TRUE(lease);
    token = lease->token;
  }
  clock_.Advance(absl::Minutes(6));
  EXPECT_EQ(store.Resume(token, "m").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(observer_.count("expired"), 1);
}

TEST_F(SessionStoreTest, AttachedSessionsNeverExpire) {
  SessionStore store(Options(), clock_, &observer_);
  absl::StatusOr<Lease> lease = store.Create("m", 1);
  ASSERT_TRUE(lease.ok());
  clock_.Advance(absl::Hours(10));
  EXPECT_EQ(store.Reap(), 0);
  EXPECT_EQ(store.size(), 1);
}

TEST_F(SessionStoreTest, FullStoreRefusesNewSessionsButEvictsNone) {
  SessionStore store(Options(/*max=*/2), clock_, &observer_);
  Lease a = NewSession(store);
  ASSERT_TRUE(a);
  std::string idle;
  {
    Lease b = NewSession(store);
    ASSERT_TRUE(b);
    idle = b->token;
  }
  absl::StatusOr<Lease> c = store.Create("m", 1);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("2 sessions"));
  EXPECT_EQ(observer_.count("refused"), 1);
  // The idle session is still there: a full store evicts nobody.
  EXPECT_TRUE(store.Resume(idle, "m").ok());
  // Once it expires, its place is free again.
  clock_.Advance(absl::Minutes(5));
  EXPECT_TRUE(store.Create("m", 1).ok());
  EXPECT_EQ(observer_.count("expired"), 1);
}

TEST_F(SessionStoreTest, EndedSessionsAreGoneAtOnce) {
  SessionStore store(Options(), clock_, &observer_);
  Lease lease = NewSession(store);
  ASSERT_TRUE(lease);
  const std::string token = lease->token;
  lease.End();
  EXPECT_EQ(store.Resume(token, "m").status().code(),
            absl::StatusCode::kNotFound);
  lease.Release();
  EXPECT_EQ(store.size(), 0);
  EXPECT_EQ(observer_.count("ended"), 1);
}

TEST_F(SessionStoreTest, AnUncommittedSessionIsGoneWithItsLease) {
  SessionStore store(Options(/*max=*/1), clock_, &observer_);
  std::string token;
  {
    absl::StatusOr<Lease> lease = store.Create("m", 1);
    ASSERT_TRUE(lease.ok());
    token = (*lease)->token;
    // Provisional: it holds its place, but nobody can resume it yet.
    EXPECT_EQ(store.size(), 1);
    EXPECT_EQ(store.Create("m", 1).status().code(),
              absl::StatusCode::kResourceExhausted);
  }  // Its first chunk failed: no commit.
  EXPECT_EQ(store.size(), 0);
  EXPECT_EQ(store.Resume(token, "m").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(observer_.count("created"), 0);
  EXPECT_EQ(observer_.count("ended"), 0);
  EXPECT_EQ(observer_.count("expired"), 0);
  // Its place is free again.
  EXPECT_TRUE(NewSession(store));
  EXPECT_EQ(observer_.count("created"), 1);
}

TEST_F(SessionStoreTest, AProvisionalTokenCannotBeResumed) {
  SessionStore store(Options(), clock_, &observer_);
  absl::StatusOr<Lease> lease = store.Create("m", 1);
  ASSERT_TRUE(lease.ok());
  absl::StatusOr<Lease> other = store.Resume((*lease)->token, "m");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kNotFound);
  lease->Commit();
  lease->Commit();  // A second commit changes nothing.
  EXPECT_EQ(observer_.count("created"), 1);
  const std::string token = (*lease)->token;
  lease->Release();
  EXPECT_TRUE(store.Resume(token, "m").ok());
}

TEST_F(SessionStoreTest, ACommittedAndEndedFirstChunkCountsBoth) {
  SessionStore store(Options(), clock_, &observer_);
  absl::StatusOr<Lease> lease = store.Create("m", 1);
  ASSERT_TRUE(lease.ok());
  lease->Commit();
  lease->End();
  lease->Release();
  EXPECT_EQ(store.size(), 0);
  EXPECT_EQ(observer_.count("created"), 1);
  EXPECT_EQ(observer_.count("ended"), 1);
}

TEST_F(SessionStoreTest, OnlyItsOwnerMayResumeASession) {
  SessionStore store(Options(), clock_, &observer_);
  std::string token;
  {
    Lease lease = NewSession(store, "alice");
    ASSERT_TRUE(lease);
    token = lease->token;
  }
  const absl::Status unknown = store.Resume("nope", "m", "bob").status();
  ASSERT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  // Another owner learns nothing: not the model, not whether it is
  // attached; the answer is the unknown token's, word for word.
  for (const char* model : {"m", "other"}) {
    for (const char* owner : {"bob", ""}) {
      EXPECT_EQ(store.Resume(token, model, owner).status(), unknown)
          << model << " " << owner;
    }
  }
  Lease mine = *store.Resume(token, "m", "alice");
  ASSERT_TRUE(mine);
  EXPECT_EQ(store.Resume(token, "m", "bob").status(), unknown);
  // And a session without owner is not anybody's.
  Lease anonymous = NewSession(store);
  const std::string anonymous_token = anonymous->token;
  anonymous.Release();
  EXPECT_EQ(store.Resume(anonymous_token, "m", "alice").status(), unknown);
  EXPECT_TRUE(store.Resume(anonymous_token, "m").ok());
}

TEST_F(SessionStoreTest, EachOwnerHasAQuota) {
  SessionStore::Options options = Options(/*max=*/10);
  options.max_sessions_per_owner = 2;
  SessionStore store(options, clock_, &observer_);
  Lease a1 = NewSession(store, "alice");
  std::string idle;
  {
    Lease a2 = NewSession(store, "alice");
    idle = a2->token;
  }
  absl::StatusOr<Lease> a3 = store.Create("m", 1, "alice");
  EXPECT_EQ(a3.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(a3.status().message()),
              HasSubstr("quota of 2 sessions (--max-sessions-per-token)"));
  EXPECT_EQ(observer_.count("refused"), 1);
  // Others are not held back by alice, nor are callers without owner.
  Lease b1 = NewSession(store, "bob");
  Lease b2 = NewSession(store, "bob");
  Lease n1 = NewSession(store);
  Lease n2 = NewSession(store);
  Lease n3 = NewSession(store);
  EXPECT_TRUE(b1 && b2 && n1 && n2 && n3);
  // An ended session frees its place in the quota; so does an expired one.
  a1.End();
  a1.Release();
  Lease a4 = NewSession(store, "alice");
  ASSERT_TRUE(a4);
  EXPECT_FALSE(store.Create("m", 1, "alice").ok());
  clock_.Advance(absl::Minutes(5));
  EXPECT_TRUE(store.Create("m", 1, "alice").ok());
  EXPECT_EQ(store.Resume(idle, "m", "alice").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SessionStoreTest, AQuotaOfZeroIsNoLimit) {
  SessionStore::Options options = Options(/*max=*/5);
  options.max_sessions_per_owner = 0;
  SessionStore store(options, clock_, &observer_);
  std::vector<Lease> leases;
  for (int i = 0; i < 5; ++i) leases.push_back(NewSession(store, "alice"));
  EXPECT_EQ(store.size(), 5);
  EXPECT_THAT(std::string(store.Create("m", 1, "alice").status().message()),
              HasSubstr("5 sessions (--max-sessions)"));
}

// Many threads at once: run under ThreadSanitizer by tools/sanitize.sh.
class SessionStoreConcurrencyTest : public SessionStoreTest {
 protected:
  static constexpr int kThreads = 8;

  // Leases held now, by token: never more than one per session.
  void Took(const Lease& lease) {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(++holders_[lease->token], 1) << "two leases on one session";
  }
  void Giving(const Lease& lease) {
    absl::MutexLock lock(&mu_);
    --holders_[lease->token];
  }
  void Known(const std::string& token, const std::string& owner) {
    absl::MutexLock lock(&mu_);
    tokens_.push_back({token, owner});
  }
  std::pair<std::string, std::string> AnyKnown(std::mt19937& random) {
    absl::MutexLock lock(&mu_);
    if (tokens_.empty()) return {"none", ""};
    return tokens_[random() % tokens_.size()];
  }

  absl::Mutex mu_;
  std::map<std::string, int> holders_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, std::string>> tokens_ ABSL_GUARDED_BY(mu_);
};

TEST_F(SessionStoreConcurrencyTest, RandomTrafficKeepsTheInvariants) {
  SessionStore::Options options = Options(/*max=*/48);
  options.max_sessions_per_owner = 16;
  SessionStore store(options, clock_, &observer_);
  const std::vector<std::string> owners = {"a", "b", "c", ""};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(t);
      std::vector<Lease> held;
      const std::string& owner = owners[t % owners.size()];
      for (int op = 0; op < 3000; ++op) {
        const int what = random() % 100;
        if (what < 30) {
          absl::StatusOr<Lease> lease = store.Create("m", 1, owner);
          if (lease.ok()) {
            Took(*lease);
            (*lease)->state[0] = t;
            if (random() % 4 != 0) {  // Else its first chunk "fails".
              lease->Commit();
              Known((*lease)->token, owner);
            }
            held.push_back(*std::move(lease));
          }
        } else if (what < 60) {
          const auto [token, token_owner] = AnyKnown(random);
          // Mostly as its owner, sometimes as somebody else.
          const std::string& as =
              random() % 4 == 0 ? owners[random() % owners.size()] : owner;
          absl::StatusOr<Lease> lease = store.Resume(token, "m", as);
          if (lease.ok()) {
            EXPECT_EQ(as, token_owner) << "resumed by another owner";
            Took(*lease);
            (*lease)->state[0] = t;
            held.push_back(*std::move(lease));
          }
        } else if (what < 90 && !held.empty()) {
          const size_t i = random() % held.size();
          EXPECT_EQ(held[i]->state[0], t) << "another call wrote the state";
          if (random() % 3 == 0) held[i].End();
          Giving(held[i]);
          held[i].Release();
          held.erase(held.begin() + i);
        } else if (what < 95) {
          store.Reap();
        } else {
          clock_.Advance(absl::Seconds(10));
        }
        EXPECT_LE(store.size(), 48);
      }
      for (Lease& lease : held) Giving(lease);
    });
  }
  for (std::thread& thread : threads) thread.join();
  // Every lease is gone; what is left are committed sessions, each created
  // once and not yet expired or ended.
  EXPECT_EQ(store.size(), observer_.count("created") -
                              observer_.count("expired") -
                              observer_.count("ended"));
  clock_.Advance(absl::Minutes(5));
  store.Reap();
  EXPECT_EQ(store.size(), 0);
  EXPECT_EQ(observer_.count("created"),
            observer_.count("expired") + observer_.count("ended"));
  EXPECT_GT(observer_.count("created"), 0);
  EXPECT_GT(observer_.count("resumed"), 0);
}

TEST_F(SessionStoreConcurrencyTest, RacingCreatesFillTheQuotasExactly) {
  SessionStore::Options options = Options(/*max=*/30);
  options.max_sessions_per_owner = 10;
  SessionStore store(options, clock_, &observer_);
  // Four owners of two threads each: 40 wanted, 30 fit, 10 per owner.
  std::vector<std::vector<Lease>> held(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string owner(1, static_cast<char>('a' + t % 4));
      for (int i = 0; i < 20; ++i) {
        absl::StatusOr<Lease> lease = store.Create("m", 1, owner);
        if (!lease.ok()) {
          EXPECT_EQ(lease.status().code(),
                    absl::StatusCode::kResourceExhausted);
          continue;
        }
        // Half are committed, half stay provisional; both count.
        if (i % 2 == 0) lease->Commit();
        held[t].push_back(*std::move(lease));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::map<char, int> per_owner;
  int total = 0;
  for (int t = 0; t < kThreads; ++t) {
    per_owner['a' + t % 4] += static_cast<int>(held[t].size());
    total += static_cast<int>(held[t].size());
  }
  EXPECT_EQ(total, 30);
  EXPECT_EQ(store.size(), 30);
  for (const auto& [owner, n] : per_owner) EXPECT_LE(n, 10) << owner;
  EXPECT_EQ(observer_.count("refused"), kThreads * 20 - 30);
  // Dropping every lease leaves the committed sessions only, and frees
  // each owner's quota by as many.
  const int committed = observer_.count("created");
  held.clear();
  EXPECT_EQ(store.size(), committed);
}

TEST(TokenForLogTest, ShowsOnlyAPrefix) {
  const std::string token(43, 'x');
  EXPECT_EQ(TokenForLog("abcdefghijkl"), "abcdef…");
  EXPECT_LT(TokenForLog(token).size(), 12u);
}

}  // namespace
}  // namespace rnnserve::sessions
