// rnnctl's RegressSession against a scripted in-process Inference service
// over a real gRPC channel: which failures it resends, that a resend carries
// the same chunk from the same position (expected_first_step), that a
// replayed answer counts as the answer, and the errors it gives up with.
// The backoff schedule and the failure classification are checked alone.
#include "client/regress_session.h"

#include <grpcpp/grpcpp.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/retry_policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rnnserve::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(BackoffDelayTest, DoublesFromTheInitialWaitUpToTheCap) {
  const RetryPolicy policy;  // 100 ms doubling to 5 s.
  std::vector<absl::Duration> waits;
  for (int retry = 1; retry <= 9; ++retry) {
    waits.push_back(BackoffDelay(policy, retry, 0.0));
  }
  EXPECT_THAT(
      waits, ElementsAre(absl::Milliseconds(100), absl::Milliseconds(200),
                         absl::Milliseconds(400), absl::Milliseconds(800),
                         absl::Milliseconds(1600), absl::Milliseconds(3200),
                         absl::Seconds(5), absl::Seconds(5), absl::Seconds(5)));
  // Far out, the exponent must neither overflow nor pass the cap.
  EXPECT_EQ(BackoffDelay(policy, 100000, 0.0), absl::Seconds(5));
}

TEST(BackoffDelayTest, JitterShortensTheWaitByAtMostItsFraction) {
  RetryPolicy policy;
  policy.jitter = 0.5;
  EXPECT_EQ(BackoffDelay(policy, 3, 0.5), absl::Milliseconds(300));
  EXPECT_EQ(BackoffDelay(policy, 3, 1.0), absl::Milliseconds(200));
  // Out-of-range draws and jitter are clamped, never negative waits.
  EXPECT_EQ(BackoffDelay(policy, 3, 7.0), absl::Milliseconds(200));
  policy.jitter = 3;
  EXPECT_EQ(BackoffDelay(policy, 3, 1.0), absl::ZeroDuration());
}

TEST(ClassifyChunkFailureTest, ResendsWhatBrokeAndNothingElse) {
  using grpc::StatusCode;
  EXPECT_EQ(ClassifyChunkFailure(StatusCode::UNAVAILABLE,
                                 "server draining; resume with your session "
                                 "token",
                                 std::nullopt),
            ChunkFailure::kRetry);
  EXPECT_EQ(ClassifyChunkFailure(StatusCode::DEADLINE_EXCEEDED,
                                 "Deadline "
                                 "Exceeded",
                                 std::nullopt),
            ChunkFailure::kRetry);
  EXPECT_EQ(ClassifyChunkFailure(StatusCode::CANCELLED, "", std::nullopt),
            ChunkFailure::kRetry);
  EXPECT_EQ(
      ClassifyChunkFailure(StatusCode::ABORTED, "stream reset", std::nullopt),
      ChunkFailure::kRetry);
  EXPECT_EQ(ClassifyChunkFailure(StatusCode::INTERNAL,
                                 "Received RST_STREAM with error code 2",
                                 std::nullopt),
            ChunkFailure::kRetry);
  EXPECT_EQ(ClassifyChunkFailure(StatusCode::ABORTED, "session taken over",
                                 std::nullopt),
            ChunkFailure::kTakenOver);
  EXPECT_EQ(ClassifyChunkFailure(StatusCode::FAILED_PRECONDITION,
                                 "session is at step 40", 40),
            ChunkFailure::kPositionMismatch);
  EXPECT_EQ(
      ClassifyChunkFailure(StatusCode::FAILED_PRECONDITION,
                           "model is not a regression model", std::nullopt),
      ChunkFailure::kFatal);
  EXPECT_EQ(
      ClassifyChunkFailure(StatusCode::INTERNAL, "engine failed", std::nullopt),
      ChunkFailure::kFatal);
  EXPECT_EQ(
      ClassifyChunkFailure(StatusCode::INVALID_ARGUMENT, "steps", std::nullopt),
      ChunkFailure::kFatal);
  EXPECT_EQ(
      ClassifyChunkFailure(StatusCode::NOT_FOUND, "session", std::nullopt),
      ChunkFailure::kFatal);
}

TEST(ServerPositionTest, ReadsTheDecimalTrailerOnly) {
  std::multimap<grpc::string_ref, grpc::string_ref> trailers;
  EXPECT_EQ(ServerPosition(trailers), std::nullopt);
  trailers.emplace("rnnserve-session-position", "1234");
  EXPECT_EQ(ServerPosition(trailers), 1234u);
  std::multimap<grpc::string_ref, grpc::string_ref> bad;
  bad.emplace("rnnserve-session-position", "12a");
  EXPECT_EQ(ServerPosition(bad), std::nullopt);
}

// What the scripted service does with the next chunk it receives.
enum class Action {
  kAnswer,      // Applies it (or replays it) and answers.
  kFailBefore,  // Fails the call with `status` without applying it.
  kLoseAnswer,  // Applies it, then fails the call with `status`.
};

struct Step {
  Action action = Action::kAnswer;
  grpc::Status status;
};

// A toy of the server's session rules: a session's state is its position;
// a chunk's output j is values[j] + its step index, so a chunk applied
// twice shows. Remembers the last chunk to replay it, as the server does.
class ScriptedInference final : public v1::Inference::Service {
 public:
  void Script(std::vector<Step> steps) {
    absl::MutexLock lock(&mu_);
    script_.assign(steps.begin(), steps.end());
  }
  // Adds a session at `position`; its token.
  std::string AddSession(uint64_t position) {
    absl::MutexLock lock(&mu_);
    const std::string token = absl::StrCat("tok", sessions_.size() + 1);
    sessions_[token].position = position;
    return token;
  }
  std::vector<v1::RegressRequest> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  int sessions() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(sessions_.size());
  }

  grpc::Status RegressChunk(grpc::ServerContext* context,
                            const v1::RegressRequest* request,
                            v1::RegressResponse* response) override {
    std::string token = request->session_token();
    return Handle(context, *request, &token, response);
  }

  grpc::Status Regress(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::RegressResponse, v1::RegressRequest>* stream)
      override {
    std::string token;
    v1::RegressRequest request;
    bool first = true;
    while (stream->Read(&request)) {
      if (first) token = request.session_token();
      v1::RegressResponse response;
      grpc::Status status = Handle(context, request, &token, &response);
      if (!status.ok()) return status;
      if (!first) response.clear_session_token();
      first = false;
      stream->Write(response);
    }
    absl::MutexLock lock(&mu_);
    return close_status_;
  }

  // How a Regress stream ends once the client has half-closed it.
  void SetCloseStatus(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    close_status_ = std::move(status);
  }

 private:
  struct Session {
    uint64_t position = 0;
    std::optional<uint64_t> last_from;
    std::vector<float> last_values;
    v1::RegressResponse last_answer;
  };

  grpc::Status Handle(grpc::ServerContext* context,
                      const v1::RegressRequest& request, std::string* token,
                      v1::RegressResponse* response) {
    absl::MutexLock lock(&mu_);
    received_.push_back(request);
    Step step;
    if (!script_.empty()) {
      step = script_.front();
      script_.pop_front();
    }
    if (step.action == Action::kFailBefore) return step.status;
    if (token->empty()) {
      *token = absl::StrCat("tok", sessions_.size() + 1);
      sessions_[*token];
    }
    auto it = sessions_.find(*token);
    if (it == sessions_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such session");
    }
    Session& s = it->second;
    const std::vector<float> values(request.values().begin(),
                                    request.values().end());
    if (request.steps() == 0) {  // A position read.
      response->set_first_step(s.position);
    } else if (request.expected_first_step() == s.position) {
      response->set_first_step(s.position);
      response->set_steps(request.steps());
      for (uint32_t j = 0; j < request.steps(); ++j) {
        response->add_outputs(values[j] + static_cast<float>(s.position + j));
      }
      s.last_from = s.position;
      s.last_values = values;
      s.last_answer = *response;
      s.position += request.steps();
    } else if (s.last_from == request.expected_first_step() &&
               s.last_values == values) {
      *response = s.last_answer;
      response->set_replayed(true);
    } else {
      context->AddTrailingMetadata("rnnserve-session-position",
                                   absl::StrCat(s.position));
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          absl::StrCat("session is at step ", s.position));
    }
    response->set_session_token(*token);
    if (request.end_session()) {
      response->set_session_ended(true);
      sessions_.erase(it);
    }
    if (step.action == Action::kLoseAnswer) return step.status;
    return grpc::Status::OK;
  }

  absl::Mutex mu_;
  std::deque<Step> script_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Session> sessions_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::RegressRequest> received_ ABSL_GUARDED_BY(mu_);
  grpc::Status close_status_ ABSL_GUARDED_BY(mu_);
};

const grpc::Status kUnavailable(grpc::StatusCode::UNAVAILABLE,
                                "server draining; resume with your session "
                                "token");

class RegressSessionTest
    : public ::testing::TestWithParam<RegressSession::Transport> {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    CommonOptions options;
    options.server = absl::StrCat("127.0.0.1:", port);
    absl::StatusOr<std::unique_ptr<Connection>> connection =
        Connection::Create(options);
    ASSERT_TRUE(connection.ok()) << connection.status();
    connection_ = std::move(*connection);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  std::unique_ptr<RegressSession> NewSession(std::string token,
                                             int max_retries = 5) {
    RegressSession::Options options;
    options.transport = GetParam();
    options.retry.max_retries = max_retries;
    options.seed = 7;
    options.sleep = [this](absl::Duration d) { sleeps_.push_back(d); };
    return std::make_unique<RegressSession>(*connection_, "m", std::move(token),
                                            std::move(options));
  }

  static v1::RegressRequest Chunk(float base) {
    v1::RegressRequest chunk;
    chunk.set_steps(2);
    chunk.add_values(base);
    chunk.add_values(base + 0.5f);
    return chunk;
  }

  std::vector<uint64_t> ExpectedFirstSteps() {
    std::vector<uint64_t> out;
    for (const v1::RegressRequest& r : service_.received()) {
      out.push_back(r.has_expected_first_step() ? r.expected_first_step()
                                                : 999);
    }
    return out;
  }

  ScriptedInference service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Connection> connection_;
  std::vector<absl::Duration> sleeps_;
};

TEST_P(RegressSessionTest, ResendsALostAnswerAndTakesTheReplay) {
  service_.Script({{}, {Action::kLoseAnswer, kUnavailable}});
  auto session = NewSession("");
  ASSERT_TRUE(session->Send(Chunk(1)).ok());
  absl::StatusOr<v1::RegressResponse> second = session->Send(Chunk(3));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->replayed());
  // Applied once, at steps 2 and 3: 3 + 2 and 3.5 + 3.
  EXPECT_EQ(second->first_step(), 2u);
  EXPECT_THAT(second->outputs(), ElementsAre(5.0f, 6.5f));
  ASSERT_TRUE(session->Send(Chunk(0)).ok());
  EXPECT_EQ(session->position(), 6u);
  EXPECT_THAT(ExpectedFirstSteps(), ElementsAre(0, 2, 2, 4));
  EXPECT_EQ(session->retries(), 1);
  EXPECT_EQ(session->replays(), 1);
  EXPECT_EQ(session->restarts(), 0);
  // The resend went out on a new call, with the token.
  EXPECT_EQ(service_.received()[2].session_token(), "tok1");
  EXPECT_EQ(sleeps_.size(), 1u);
}

TEST_P(RegressSessionTest, ResendsAChunkTheServerNeverRan) {
  const grpc::Status reset(grpc::StatusCode::INTERNAL,
                           "Received RST_STREAM with error code 2");
  service_.Script(
      {{},
       {Action::kFailBefore, kUnavailable},
       {Action::kFailBefore, reset},
       {Action::kFailBefore,
        grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "late")}});
  auto session = NewSession("");
  ASSERT_TRUE(session->Send(Chunk(1)).ok());
  absl::StatusOr<v1::RegressResponse> second = session->Send(Chunk(3));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->replayed());
  EXPECT_THAT(second->outputs(), ElementsAre(5.0f, 6.5f));
  EXPECT_THAT(ExpectedFirstSteps(), ElementsAre(0, 2, 2, 2, 2));
  EXPECT_EQ(session->retries(), 3);
  EXPECT_EQ(session->replays(), 0);
  // Jittered exponential waits: each within its doubling's range.
  ASSERT_EQ(sleeps_.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    const absl::Duration base = absl::Milliseconds(100) * (1 << i);
    EXPECT_LE(sleeps_[i], base);
    EXPECT_GE(sleeps_[i], base / 2);
  }
}

TEST_P(RegressSessionTest, ALostFirstAnswerStartsANewSession) {
  service_.Script({{Action::kLoseAnswer, kUnavailable}});
  auto session = NewSession("");
  absl::StatusOr<v1::RegressResponse> first = session->Send(Chunk(1));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(session->token(), "tok2");
  EXPECT_EQ(session->restarts(), 1);
  const std::vector<v1::RegressRequest> received = service_.received();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[1].session_token(), "");
  EXPECT_EQ(received[1].expected_first_step(), 0u);
}

TEST_P(RegressSessionTest, GivesUpAfterTheBudget) {
  service_.Script({{},
                   {Action::kFailBefore, kUnavailable},
                   {Action::kFailBefore, kUnavailable},
                   {Action::kFailBefore, kUnavailable},
                   {Action::kFailBefore, kUnavailable}});
  auto session = NewSession("", /*max_retries=*/2);
  ASSERT_TRUE(session->Send(Chunk(1)).ok());
  absl::StatusOr<v1::RegressResponse> second = session->Send(Chunk(3));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr("after 2 retries"));
  EXPECT_THAT(second.status().message(), HasSubstr("server draining"));
  EXPECT_EQ(service_.received().size(), 4u);  // 1, then 1 + 2 resends.
}

TEST_P(RegressSessionTest, NoRetriesFailsAtOnce) {
  service_.Script({{Action::kFailBefore, kUnavailable}});
  auto session = NewSession("", /*max_retries=*/0);
  EXPECT_EQ(session->Send(Chunk(1)).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(service_.received().size(), 1u);
  EXPECT_TRUE(sleeps_.empty());
}

TEST_P(RegressSessionTest, ATakeOverIsNotFoughtFor) {
  service_.Script({{},
                   {Action::kFailBefore, grpc::Status(grpc::StatusCode::ABORTED,
                                                      "session taken over")}});
  auto session = NewSession("");
  ASSERT_TRUE(session->Send(Chunk(1)).ok());
  absl::StatusOr<v1::RegressResponse> second = session->Send(Chunk(3));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(second.status().message(), HasSubstr("took the session over"));
  EXPECT_EQ(service_.received().size(), 2u);
  EXPECT_EQ(session->retries(), 0);
}

TEST_P(RegressSessionTest, APositionMismatchNamesBothPositions) {
  // Another client moved the session to step 8 meanwhile.
  const std::string token = service_.AddSession(8);
  // This client believes it is at step 4.
  RegressSession::Options options;
  options.transport = GetParam();
  options.position = 4;
  options.sleep = [this](absl::Duration d) { sleeps_.push_back(d); };
  RegressSession stale(*connection_, "m", token, std::move(options));
  absl::StatusOr<v1::RegressResponse> answer = stale.Send(Chunk(1));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(answer.status().message(),
              HasSubstr("sent the chunk from step 4 but the session is at "
                        "step 8"));
  EXPECT_EQ(service_.received().size(), 1u);
  EXPECT_TRUE(sleeps_.empty());
}

TEST_P(RegressSessionTest, AResumedSessionReadsItsPositionFirst) {
  const std::string token = service_.AddSession(30);
  auto session = NewSession(token);
  absl::StatusOr<v1::RegressResponse> answer = session->Send(Chunk(1));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->first_step(), 30u);
  const std::vector<v1::RegressRequest> received = service_.received();
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].steps(), 0u);  // The position read.
  EXPECT_FALSE(received[0].has_expected_first_step());
  EXPECT_EQ(received[1].expected_first_step(), 30u);
  EXPECT_EQ(session->position(), 32u);
}

TEST_P(RegressSessionTest, ALostEndingAnswerIsNamedWhenTheSessionIsGone) {
  service_.Script({{}, {Action::kLoseAnswer, kUnavailable}});
  auto session = NewSession("");
  ASSERT_TRUE(session->Send(Chunk(1)).ok());
  v1::RegressRequest last = Chunk(3);
  last.set_end_session(true);
  absl::StatusOr<v1::RegressResponse> answer = session->Send(last);
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(answer.status().message(),
              HasSubstr("chunk was applied and ended the session"));
  EXPECT_EQ(service_.received().size(), 3u);
}

// A server that drains while a stream is being closed loses nothing: every
// chunk on it was answered (before the fix CloseStream returned the
// UNAVAILABLE, failing rnnctl stream --reconnect-every in a rolling update).
TEST(RegressSessionCloseTest, AStreamEndingUnavailableClosesCleanly) {
  ScriptedInference service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  CommonOptions common;
  common.server = absl::StrCat("127.0.0.1:", port);
  absl::StatusOr<std::unique_ptr<Connection>> connection =
      Connection::Create(common);
  ASSERT_TRUE(connection.ok()) << connection.status();
  RegressSession session(**connection, "m", "",
                         RegressSession::Transport::kStream);
  v1::RegressRequest chunk;
  chunk.set_steps(1);
  chunk.add_values(1);
  ASSERT_TRUE(session.Send(chunk).ok());
  service.SetCloseStatus(kUnavailable);
  EXPECT_TRUE(session.CloseStream().ok());
  ASSERT_TRUE(session.Send(chunk).ok());
  // Another client taking the session over is no such harmless end.
  service.SetCloseStatus(
      grpc::Status(grpc::StatusCode::ABORTED, "session taken over"));
  EXPECT_EQ(session.CloseStream().code(), absl::StatusCode::kAborted);
  server->Shutdown();
}

TEST_P(RegressSessionTest, OtherErrorsAreNotResent) {
  service_.Script(
      {{Action::kFailBefore, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                          "values: expected 2")}});
  auto session = NewSession("");
  absl::StatusOr<v1::RegressResponse> answer = session->Send(Chunk(1));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(answer.status().message(), HasSubstr("values: expected 2"));
  EXPECT_EQ(service_.received().size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Transports, RegressSessionTest,
    ::testing::Values(RegressSession::Transport::kStream,
                      RegressSession::Transport::kUnary),
    [](const ::testing::TestParamInfo<RegressSession::Transport>& info) {
      return info.param == RegressSession::Transport::kStream ? "Stream"
                                                              : "Unary";
    });

}  // namespace
}  // namespace rnnserve::client
