#include "server/sessions/session_store.h"

#include <map>
#include <set>
#include <string>

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

TEST(TokenForLogTest, ShowsOnlyAPrefix) {
  const std::string token(43, 'x');
  EXPECT_EQ(TokenForLog("abcdefghijkl"), "abcdef…");
  EXPECT_LT(TokenForLog(token).size(), 12u);
}

}  // namespace
}  // namespace rnnserve::sessions
