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
  absl::StatusOr<Lease> lease = store.Create("m", 1);
  ASSERT_TRUE(lease.ok());
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
    absl::StatusOr<Lease> lease = store.Create("m", 1);
    ASSERT_TRUE(lease.ok());
    token = (*lease)->token;
  }
  absl::StatusOr<Lease> other = store.Resume(token, "other");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("\"m\""));
}

TEST_F(SessionStoreTest, IdleSessionsExpireAfterTheTtl) {
  SessionStore store(Options(), clock_, &observer_);
  std::string token;
  {
    absl::StatusOr<Lease> lease = store.Create("m", 1);
    ASSERT_TRUE(lease.ok());
    token = (*lease)->token;
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
    absl::StatusOr<Lease> lease = store.Create("m", 1);
    ASSERT_TRUE(lease.ok());
    token = (*lease)->token;
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
  absl::StatusOr<Lease> a = store.Create("m", 1);
  ASSERT_TRUE(a.ok());
  std::string idle;
  {
    absl::StatusOr<Lease> b = store.Create("m", 1);
    ASSERT_TRUE(b.ok());
    idle = (*b)->token;
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
  absl::StatusOr<Lease> lease = store.Create("m", 1);
  ASSERT_TRUE(lease.ok());
  const std::string token = (*lease)->token;
  lease->End();
  EXPECT_EQ(store.Resume(token, "m").status().code(),
            absl::StatusCode::kNotFound);
  lease->Release();
  EXPECT_EQ(store.size(), 0);
  EXPECT_EQ(observer_.count("ended"), 1);
}

TEST(TokenForLogTest, ShowsOnlyAPrefix) {
  const std::string token(43, 'x');
  EXPECT_EQ(TokenForLog("abcdefghijkl"), "abcdef…");
  EXPECT_LT(TokenForLog(token).size(), 12u);
}

}  // namespace
}  // namespace rnnserve::sessions
