// Two servers sharing one real redis-server, as two replicas of a fleet:
// either continues the other's sessions exactly, a resume on one fences a
// stream on the other, and a Redis that goes away fails streams loudly while
// Classify goes on.
#include <grpcpp/grpcpp.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/test_server.h"

namespace rnnserve {
namespace {

using testing::ContextWithDeadline;
using ::testing::HasSubstr;
using testing::TestServer;

constexpr float kSameTolerance = 1e-6f;

std::vector<float> Sine(int steps) {
  std::vector<float> x(steps);
  for (int i = 0; i < steps; ++i) x[i] = std::sin(0.1f * i);
  return x;
}

v1::RegressRequest Chunk(const std::vector<float>& x, int from, int steps,
                         const std::string& token = "") {
  v1::RegressRequest r =
      testing::ChunkRequest(x, from, steps, "sine_rnn", token);
  r.set_expected_first_step(from);
  return r;
}

class SharedSessionsTest : public ::testing::Test {
 protected:
  service::ServerOptions Options() const {
    service::ServerOptions o;
    sessions::RedisConnection::Options redis;
    redis.address = {"127.0.0.1", redis_.port(), 0};
    redis.io_timeout = absl::Milliseconds(500);
    o.redis_sessions = redis;
    o.store_probe_interval = absl::Milliseconds(50);
    return o;
  }
  static std::vector<model::Model> Models() {
    return testing::LoadModels({"models/sine_rnn", "models/fashion_lstm"});
  }
  grpc::Status Run(TestServer& server, const v1::RegressRequest& request,
                   v1::RegressResponse& response) {
    auto context = ContextWithDeadline();
    return server.NewStub()->RegressChunk(context.get(), request, &response);
  }
  // What one uninterrupted pass on one server gives.
  std::vector<float> OnePass(const std::vector<float>& x) {
    v1::RegressResponse response;
    EXPECT_TRUE(
        Run(a_, Chunk(x, 0, static_cast<int>(x.size())), response).ok());
    return {response.outputs().begin(), response.outputs().end()};
  }

  testing::RedisServer redis_;
  TestServer a_{Models(), Options()};
  TestServer b_{Models(), Options()};
};

TEST_F(SharedSessionsTest, EitherReplicaContinuesASessionExactly) {
  const std::vector<float> x = Sine(60);
  const std::vector<float> want = OnePass(x);
  std::vector<float> got;
  std::string token;
  // Chunks of 10, alternating between the two servers.
  for (int from = 0; from < 60; from += 10) {
    TestServer& server = (from / 10) % 2 == 0 ? a_ : b_;
    v1::RegressResponse response;
    const grpc::Status s = Run(server, Chunk(x, from, 10, token), response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.first_step(), static_cast<uint64_t>(from));
    token = response.session_token();
    got.insert(got.end(), response.outputs().begin(), response.outputs().end());
  }
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], kSameTolerance) << i;
  }
}

TEST_F(SharedSessionsTest, AResumeOnOneReplicaFencesAStreamOnTheOther) {
  const std::vector<float> x = Sine(30);
  auto stub_a = a_.NewStub();
  auto context = ContextWithDeadline();
  auto on_a = stub_a->Regress(context.get());
  v1::RegressResponse response;
  ASSERT_TRUE(on_a->Write(Chunk(x, 0, 10)) && on_a->Read(&response));
  const std::string token = response.session_token();
  // The client went to B (its connection to A looked dead).
  ASSERT_TRUE(Run(b_, Chunk(x, 10, 10, token), response).ok());
  EXPECT_EQ(response.first_step(), 10u);
  // A's stream may not apply anything more.
  EXPECT_FALSE(on_a->Write(Chunk(x, 10, 10)) && on_a->Read(&response));
  const grpc::Status aborted = on_a->Finish();
  EXPECT_EQ(aborted.error_code(), grpc::ABORTED);
  EXPECT_THAT(aborted.error_message(), HasSubstr("session taken over"));
  ASSERT_TRUE(Run(a_, Chunk(x, 20, 10, token), response).ok());
  EXPECT_EQ(response.first_step(), 20u);
}

// Waits for the health of `service` on `server` to be `want`.
bool HealthBecomes(TestServer& server, const std::string& service,
                   grpc::health::v1::HealthCheckResponse::ServingStatus want) {
  auto health = grpc::health::v1::Health::NewStub(server.NewChannel());
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (absl::Now() < until) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    auto context = ContextWithDeadline();
    if (health->Check(context.get(), request, &response).ok() &&
        response.status() == want) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

TEST_F(SharedSessionsTest, RedisDownFailsStreamsLoudlyAndClassifyGoesOn) {
  using Health = grpc::health::v1::HealthCheckResponse;
  const std::vector<float> x = Sine(20);
  v1::RegressResponse response;
  ASSERT_TRUE(Run(a_, Chunk(x, 0, 10), response).ok());
  const std::string token = response.session_token();
  EXPECT_TRUE(HealthBecomes(a_, "rnnserve.v1.SessionStore", Health::SERVING));
  redis_.Kill();
  const grpc::Status down = Run(a_, Chunk(x, 10, 10, token), response);
  EXPECT_EQ(down.error_code(), grpc::UNAVAILABLE);
  EXPECT_THAT(down.error_message(), HasSubstr("session store"));
  const grpc::Status new_session = Run(b_, Chunk(x, 0, 10), response);
  EXPECT_EQ(new_session.error_code(), grpc::UNAVAILABLE);
  EXPECT_TRUE(
      HealthBecomes(a_, "rnnserve.v1.SessionStore", Health::NOT_SERVING));
  EXPECT_TRUE(HealthBecomes(a_, "", Health::SERVING));
  // Classify needs no session store.
  v1::ClassifyRequest classify;
  classify.set_model("fashion_lstm");
  v1::Sequence* sequence = classify.add_sequences();
  sequence->set_steps(28);
  sequence->mutable_values()->Resize(28 * 28, 0.5f);
  v1::ClassifyResponse classified;
  auto context = ContextWithDeadline();
  EXPECT_TRUE(
      a_.NewStub()->Classify(context.get(), classify, &classified).ok());
  const std::string up = "rnnserve_session_store_up{backend=\"redis\"} 0";
  EXPECT_THAT(a_.metrics().Render(), HasSubstr(up));
  // Back, without persistence: the session is gone, and says so.
  redis_.Start();
  EXPECT_TRUE(HealthBecomes(a_, "rnnserve.v1.SessionStore", Health::SERVING));
  EXPECT_EQ(Run(a_, Chunk(x, 10, 10, token), response).error_code(),
            grpc::NOT_FOUND);
  EXPECT_TRUE(Run(a_, Chunk(x, 0, 10), response).ok());
}

}  // namespace
}  // namespace rnnserve
