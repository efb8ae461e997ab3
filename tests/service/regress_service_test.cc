// Streaming regression over real gRPC streams: state carried across chunks,
// streams and sessions, and every way a stream can go wrong.
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/test_server.h"

namespace rnnserve {
namespace {

using testing::ContextWithDeadline;
using testing::Golden;
using testing::GoldensDir;
using ::testing::HasSubstr;
using testing::ReadGolden;
using testing::TestServer;

using Stream =
    grpc::ClientReaderWriter<v1::RegressRequest, v1::RegressResponse>;

// Chunking and batching may change the last bits only.
constexpr float kSameTolerance = 1e-6f;
// See tests/engine/engine_golden_test.cc for why 1e-5 against PyTorch.
constexpr float kPyTorchTolerance = 1e-5f;

// The seed regressor's golden stream: 100 steps of sin(k*pi/10).
struct SineGolden {
  std::vector<float> inputs, outputs;
  SineGolden() {
    const Golden g = ReadGolden(GoldensDir() / "sine_rnn_stream.safetensors");
    inputs = g.F32("inputs");
    outputs = g.F32("outputs");
  }
};

v1::RegressRequest Chunk(const std::vector<float>& x, size_t from, size_t steps,
                         const std::string& model = "",
                         const std::string& token = "") {
  return testing::ChunkRequest(x, from, steps, model, token);
}

double MetricValue(TestServer& server, const std::string& series);

// One stream with its own context.
struct OpenStream {
  std::unique_ptr<grpc::ClientContext> context = ContextWithDeadline();
  std::unique_ptr<Stream> stream;
  explicit OpenStream(v1::Inference::Stub& stub)
      : stream(stub.Regress(context.get())) {}
  // Writes and reads one answer; false if the stream ended instead.
  bool Exchange(const v1::RegressRequest& request,
                v1::RegressResponse* response) {
    return stream->Write(request) && stream->Read(response);
  }
  grpc::Status Close() {
    stream->WritesDone();
    v1::RegressResponse extra;
    while (stream->Read(&extra)) {
    }
    return stream->Finish();
  }
};

class RegressServiceTest : public ::testing::Test {
 protected:
  RegressServiceTest() : server_(Models(), Options(), &clock_) {}

  static std::vector<model::Model> Models() {
    return testing::LoadModels({"models/sine_rnn", "models/fashion_lstm",
                                "tests/goldens/lstm_reg_3l"});
  }
  static service::ServerOptions Options() {
    service::ServerOptions o;
    o.sessions.idle_ttl = absl::Minutes(10);
    o.sessions.max_sessions = 50;
    return o;
  }

  // Streams `x` in chunks of the given sizes over `streams` successive
  // streams of one session; returns every output.
  std::vector<float> RunSplit(const std::vector<float>& x,
                              const std::vector<size_t>& chunks, int streams) {
    std::vector<float> out;
    std::string token;
    size_t at = 0, chunk_index = 0;
    const size_t per_stream = (chunks.size() + streams - 1) / streams;
    for (int s = 0; s < streams && at < x.size(); ++s) {
      OpenStream stream(*stub_);
      for (size_t k = 0; k < per_stream && chunk_index < chunks.size();
           ++k, ++chunk_index) {
        const size_t steps = chunks[chunk_index];
        v1::RegressResponse response;
        EXPECT_TRUE(stream.Exchange(
            Chunk(x, at, steps, k == 0 ? "sine_rnn" : "", k == 0 ? token : ""),
            &response));
        if (token.empty()) token = response.session_token();
        EXPECT_EQ(response.first_step(), at);
        out.insert(out.end(), response.outputs().begin(),
                   response.outputs().end());
        at += steps;
      }
      EXPECT_TRUE(stream.Close().ok());
    }
    return out;
  }

  static std::vector<size_t> Even(size_t total, size_t chunk) {
    std::vector<size_t> sizes;
    for (size_t at = 0; at < total; at += chunk) {
      sizes.push_back(std::min(chunk, total - at));
    }
    return sizes;
  }

  FakeClock clock_{absl::Now()};
  TestServer server_;
  std::unique_ptr<v1::Inference::Stub> stub_ = server_.NewStub();
  SineGolden sine_;
};

void ExpectAllNear(const std::vector<float>& got,
                   const std::vector<float>& want, float tolerance,
                   const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], tolerance) << what << " step " << i;
  }
}

TEST_F(RegressServiceTest, ChunksOfAnySizeGiveTheOnePassAnswer) {
  const std::vector<float> whole = RunSplit(sine_.inputs, {100}, 1);
  ExpectAllNear(whole, sine_.outputs, kPyTorchTolerance, "one pass");
  for (size_t chunk : {1, 3, 10}) {
    ExpectAllNear(RunSplit(sine_.inputs, Even(100, chunk), 1), whole,
                  kSameTolerance, "chunks of " + std::to_string(chunk));
  }
}

TEST_F(RegressServiceTest, ASessionResumedOnNewStreamsContinuesExactly) {
  const std::vector<float> whole = RunSplit(sine_.inputs, {100}, 1);
  ExpectAllNear(RunSplit(sine_.inputs, Even(100, 10), 2), whole, kSameTolerance,
                "over two streams");
  ExpectAllNear(RunSplit(sine_.inputs, Even(100, 10), 5), whole, kSameTolerance,
                "over five streams");
  ExpectAllNear(RunSplit(sine_.inputs, {7, 13, 1, 29, 50}, 5), whole,
                kSameTolerance, "uneven chunks over five streams");
}

TEST_F(RegressServiceTest, InterleavedSessionsNeverMix) {
  // Session a streams sin(t); session b streams zeros; alternating chunks.
  const std::vector<float> zeros(100, 0.0f);
  const std::vector<float> want_a = RunSplit(sine_.inputs, {100}, 1);
  const std::vector<float> want_b = RunSplit(zeros, {100}, 1);
  OpenStream a(*stub_), b(*stub_);
  std::vector<float> got_a, got_b;
  for (size_t at = 0; at < 100; at += 10) {
    v1::RegressResponse ra, rb;
    ASSERT_TRUE(a.Exchange(Chunk(sine_.inputs, at, 10, "sine_rnn"), &ra));
    ASSERT_TRUE(b.Exchange(Chunk(zeros, at, 10, "sine_rnn"), &rb));
    got_a.insert(got_a.end(), ra.outputs().begin(), ra.outputs().end());
    got_b.insert(got_b.end(), rb.outputs().begin(), rb.outputs().end());
  }
  EXPECT_TRUE(a.Close().ok());
  EXPECT_TRUE(b.Close().ok());
  ExpectAllNear(got_a, want_a, kSameTolerance, "session a");
  ExpectAllNear(got_b, want_b, kSameTolerance, "session b");
}

TEST_F(RegressServiceTest, UnaryChunksCarryTheStateLikeAStream) {
  const std::vector<float> whole = RunSplit(sine_.inputs, {100}, 1);
  std::vector<float> got;
  std::string token;
  for (size_t at = 0; at < 100; at += 25) {
    v1::RegressResponse response;
    auto context = ContextWithDeadline();
    const grpc::Status status = stub_->RegressChunk(
        context.get(), Chunk(sine_.inputs, at, 25, "sine_rnn", token),
        &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.session_token().empty(), false);
    if (!token.empty()) {
      EXPECT_EQ(response.session_token(), token);
    }
    token = response.session_token();
    got.insert(got.end(), response.outputs().begin(), response.outputs().end());
  }
  ExpectAllNear(got, whole, kSameTolerance, "unary chunks");
}

TEST_F(RegressServiceTest, ResetStartsTheSessionOver) {
  OpenStream stream(*stub_);
  v1::RegressResponse first, again;
  ASSERT_TRUE(stream.Exchange(Chunk(sine_.inputs, 0, 10, "sine_rnn"), &first));
  ASSERT_TRUE(stream.Exchange(Chunk(sine_.inputs, 10, 10), &again));
  v1::RegressRequest reset = Chunk(sine_.inputs, 0, 10);
  reset.set_reset_state(true);
  v1::RegressResponse after;
  ASSERT_TRUE(stream.Exchange(reset, &after));
  EXPECT_EQ(after.first_step(), 0u);
  ASSERT_EQ(after.outputs_size(), first.outputs_size());
  for (int i = 0; i < first.outputs_size(); ++i) {
    EXPECT_NEAR(after.outputs(i), first.outputs(i), kSameTolerance);
  }
  EXPECT_TRUE(stream.Close().ok());
}

TEST_F(RegressServiceTest, EndedSessionsAreGoneAndNothingMayFollow) {
  OpenStream stream(*stub_);
  v1::RegressResponse response;
  ASSERT_TRUE(
      stream.Exchange(Chunk(sine_.inputs, 0, 10, "sine_rnn"), &response));
  const std::string token = response.session_token();
  v1::RegressRequest end;
  end.set_end_session(true);
  ASSERT_TRUE(stream.Exchange(end, &response));
  EXPECT_TRUE(response.session_ended());
  // Another request on the same stream is refused...
  EXPECT_FALSE(stream.Exchange(Chunk(sine_.inputs, 10, 10), &response));
  const grpc::Status status = stream.stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("end_session"));
  // ...and the token no longer resumes anything.
  OpenStream later(*stub_);
  EXPECT_FALSE(later.Exchange(Chunk(sine_.inputs, 10, 10, "sine_rnn", token),
                              &response));
  EXPECT_EQ(later.stream->Finish().error_code(), grpc::NOT_FOUND);
}

TEST_F(RegressServiceTest, ANewStreamTakesTheSessionOverAndTheOldOneAborts) {
  OpenStream first(*stub_);
  v1::RegressResponse response;
  ASSERT_TRUE(
      first.Exchange(Chunk(sine_.inputs, 0, 10, "sine_rnn"), &response));
  const std::string token = response.session_token();
  std::vector<float> got(response.outputs().begin(), response.outputs().end());
  // A second stream presents the token (say, the client's connection died
  // without the server noticing): it takes over at once.
  OpenStream second(*stub_);
  ASSERT_TRUE(second.Exchange(Chunk(sine_.inputs, 10, 10, "sine_rnn", token),
                              &response));
  EXPECT_EQ(response.first_step(), 10u);
  got.insert(got.end(), response.outputs().begin(), response.outputs().end());
  // The first stream's next chunk is not applied: the stream ends ABORTED.
  EXPECT_FALSE(first.Exchange(Chunk(sine_.inputs, 20, 10), &response));
  const grpc::Status aborted = first.stream->Finish();
  EXPECT_EQ(aborted.error_code(), grpc::ABORTED);
  EXPECT_THAT(aborted.error_message(), HasSubstr("session taken over"));
  // The second goes on exactly where it was.
  ASSERT_TRUE(second.Exchange(Chunk(sine_.inputs, 20, 10), &response));
  EXPECT_EQ(response.first_step(), 20u);
  got.insert(got.end(), response.outputs().begin(), response.outputs().end());
  EXPECT_TRUE(second.Close().ok());
  ExpectAllNear(got, RunSplit(sine_.inputs, {30}, 1), kSameTolerance,
                "taken over mid-session");
}

// A client that lost an answer resends the chunk from where it sent it:
// the stored answer comes back and nothing runs twice.
TEST_F(RegressServiceTest, ARetriedChunkIsAnsweredAgainNotAppliedTwice) {
  v1::RegressRequest first = Chunk(sine_.inputs, 0, 10, "sine_rnn");
  first.set_expected_first_step(0);
  auto context = ContextWithDeadline();
  v1::RegressResponse a;
  ASSERT_TRUE(stub_->RegressChunk(context.get(), first, &a).ok());
  const std::string token = a.session_token();
  v1::RegressRequest second = Chunk(sine_.inputs, 10, 10, "sine_rnn", token);
  second.set_expected_first_step(10);
  v1::RegressResponse b, b_again;
  context = ContextWithDeadline();
  ASSERT_TRUE(stub_->RegressChunk(context.get(), second, &b).ok());
  EXPECT_FALSE(b.replayed());
  // The same chunk again, on a stream this time: the stored answer.
  OpenStream stream(*stub_);
  ASSERT_TRUE(stream.Exchange(second, &b_again));
  EXPECT_TRUE(b_again.replayed());
  EXPECT_EQ(b_again.first_step(), 10u);
  EXPECT_EQ(b_again.steps(), 10u);
  EXPECT_THAT(b_again.outputs(), ::testing::ElementsAreArray(b.outputs()));
  // And the session goes on from 20, exactly.
  v1::RegressRequest third = Chunk(sine_.inputs, 20, 10);
  third.set_expected_first_step(20);
  v1::RegressResponse c;
  ASSERT_TRUE(stream.Exchange(third, &c));
  EXPECT_FALSE(c.replayed());
  EXPECT_EQ(c.first_step(), 20u);
  EXPECT_TRUE(stream.Close().ok());
  std::vector<float> got(a.outputs().begin(), a.outputs().end());
  got.insert(got.end(), b.outputs().begin(), b.outputs().end());
  got.insert(got.end(), c.outputs().begin(), c.outputs().end());
  ExpectAllNear(got, RunSplit(sine_.inputs, {30}, 1), kSameTolerance,
                "with a retried chunk");
  EXPECT_EQ(MetricValue(server_, "rnnserve_session_store_replays_total"), 1);
}

TEST_F(RegressServiceTest, AChunkFromAnotherPositionIsRefusedNamingIt) {
  auto context = ContextWithDeadline();
  v1::RegressResponse response;
  ASSERT_TRUE(stub_
                  ->RegressChunk(context.get(),
                                 Chunk(sine_.inputs, 0, 10, "sine_rnn"),
                                 &response)
                  .ok());
  const std::string token = response.session_token();
  struct Case {
    const char* name;
    uint64_t expected;
    size_t from;  // Of the values sent.
  };
  // Ahead of the session; behind it but not the last chunk; the last
  // chunk's position with other values.
  for (const Case& c : {Case{"ahead", 30, 10}, Case{"behind", 5, 5},
                        Case{"changed retry", 0, 1}}) {
    SCOPED_TRACE(c.name);
    v1::RegressRequest request =
        Chunk(sine_.inputs, c.from, 10, "sine_rnn", token);
    request.set_expected_first_step(c.expected);
    context = ContextWithDeadline();
    const grpc::Status status =
        stub_->RegressChunk(context.get(), request, &response);
    EXPECT_EQ(status.error_code(), grpc::FAILED_PRECONDITION);
    EXPECT_THAT(status.error_message(),
                HasSubstr("expected_first_step: the session is at step 10"));
    const auto& trailers = context->GetServerTrailingMetadata();
    auto position = trailers.find("rnnserve-session-position");
    ASSERT_NE(position, trailers.end());
    EXPECT_EQ(std::string(position->second.data(), position->second.size()),
              "10");
  }
  // Nothing moved: a read of the position says 10, and a stream can read
  // it too.
  v1::RegressRequest read;
  read.set_model("sine_rnn");
  read.set_session_token(token);
  context = ContextWithDeadline();
  ASSERT_TRUE(stub_->RegressChunk(context.get(), read, &response).ok());
  EXPECT_EQ(response.first_step(), 10u);
  EXPECT_EQ(response.steps(), 0u);
  OpenStream stream(*stub_);
  ASSERT_TRUE(stream.Exchange(read, &response));
  EXPECT_EQ(response.first_step(), 10u);
  EXPECT_TRUE(stream.Close().ok());
}

TEST_F(RegressServiceTest, AVanishedClientsSessionIsResumable) {
  std::string token;
  std::vector<float> got;
  {
    OpenStream stream(*stub_);
    v1::RegressResponse response;
    ASSERT_TRUE(
        stream.Exchange(Chunk(sine_.inputs, 0, 50, "sine_rnn"), &response));
    token = response.session_token();
    got.assign(response.outputs().begin(), response.outputs().end());
    stream.context->TryCancel();  // The client goes away mid-stream.
    stream.stream->Finish();
  }
  // The server notices asynchronously; retry until the session is free.
  v1::RegressResponse response;
  grpc::Status status;
  for (int attempt = 0; attempt < 100; ++attempt) {
    OpenStream stream(*stub_);
    if (stream.Exchange(Chunk(sine_.inputs, 50, 50, "sine_rnn", token),
                        &response)) {
      EXPECT_TRUE(stream.Close().ok());
      status = grpc::Status::OK;
      break;
    }
    status = stream.stream->Finish();
    ASSERT_EQ(status.error_code(), grpc::FAILED_PRECONDITION);
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(status.ok());
  got.insert(got.end(), response.outputs().begin(), response.outputs().end());
  ExpectAllNear(got, RunSplit(sine_.inputs, {100}, 1), kSameTolerance,
                "resumed after a cancel");
}

TEST_F(RegressServiceTest, IdleSessionsExpireAfterTheTtl) {
  std::string token;
  {
    OpenStream stream(*stub_);
    v1::RegressResponse response;
    ASSERT_TRUE(
        stream.Exchange(Chunk(sine_.inputs, 0, 10, "sine_rnn"), &response));
    token = response.session_token();
    ASSERT_TRUE(stream.Close().ok());
  }
  clock_.Advance(absl::Minutes(9));
  {
    OpenStream stream(*stub_);
    v1::RegressResponse response;
    ASSERT_TRUE(stream.Exchange(Chunk(sine_.inputs, 10, 10, "sine_rnn", token),
                                &response));
    ASSERT_TRUE(stream.Close().ok());
  }
  clock_.Advance(absl::Minutes(10));
  OpenStream stream(*stub_);
  v1::RegressResponse response;
  EXPECT_FALSE(stream.Exchange(Chunk(sine_.inputs, 20, 10, "sine_rnn", token),
                               &response));
  const grpc::Status status = stream.stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::NOT_FOUND);
}

TEST_F(RegressServiceTest, NewSessionsBeyondTheLimitAreRefused) {
  std::vector<std::unique_ptr<OpenStream>> open;
  v1::RegressResponse response;
  for (int i = 0; i < 50; ++i) {
    open.push_back(std::make_unique<OpenStream>(*stub_));
    ASSERT_TRUE(open.back()->Exchange(Chunk(sine_.inputs, 0, 1, "sine_rnn"),
                                      &response));
  }
  OpenStream extra(*stub_);
  EXPECT_FALSE(
      extra.Exchange(Chunk(sine_.inputs, 0, 1, "sine_rnn"), &response));
  const grpc::Status status = extra.stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::RESOURCE_EXHAUSTED);
  // The sessions held are untouched.
  ASSERT_TRUE(open.front()->Exchange(Chunk(sine_.inputs, 1, 1), &response));
  EXPECT_EQ(response.first_step(), 1u);
  for (auto& s : open) EXPECT_TRUE(s->Close().ok());
}

TEST_F(RegressServiceTest, BadRequestsEndTheStreamWithTheFieldNamed) {
  struct Case {
    std::string name;
    std::vector<v1::RegressRequest> requests;  // The last one is refused.
    grpc::StatusCode code;
    std::string message;
  };
  v1::RegressRequest nan = Chunk(sine_.inputs, 0, 3, "sine_rnn");
  nan.set_values(1, std::nanf(""));
  v1::RegressRequest zero_with_values = Chunk(sine_.inputs, 0, 2, "sine_rnn");
  zero_with_values.set_steps(0);
  v1::RegressRequest mismatch = Chunk(sine_.inputs, 0, 3, "sine_rnn");
  mismatch.set_steps(4);
  v1::RegressRequest too_long;
  too_long.set_model("sine_rnn");
  too_long.set_steps(10001);
  too_long.mutable_values()->Resize(10001, 0.0f);
  const std::vector<Case> cases = {
      {"unknown model",
       {Chunk(sine_.inputs, 0, 1, "nope")},
       grpc::NOT_FOUND,
       "model: no model named"},
      {"classification model",
       {Chunk(sine_.inputs, 0, 1, "fashion_lstm")},
       grpc::FAILED_PRECONDITION,
       "classification model; call Classify"},
      {"unknown token",
       {Chunk(sine_.inputs, 0, 1, "sine_rnn", "bogus")},
       grpc::NOT_FOUND,
       "session_token: no such session"},
      {"zero steps with values",
       {zero_with_values},
       grpc::INVALID_ARGUMENT,
       "values: expected 0 values"},
      {"values count",
       {mismatch},
       grpc::INVALID_ARGUMENT,
       "values: expected 4 values (4 steps x 1 inputs), got 3"},
      {"NaN", {nan}, grpc::INVALID_ARGUMENT, "values[1]"},
      {"too many steps",
       {too_long},
       grpc::INVALID_ARGUMENT,
       "steps: 10001 steps, at most 10000"},
      {"another model's chunk",
       {Chunk(sine_.inputs, 0, 1, "sine_rnn"),
        Chunk(sine_.inputs, 1, 1, "lstm_reg_3l")},
       grpc::INVALID_ARGUMENT,
       "model: this stream's session belongs to"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    OpenStream stream(*stub_);
    v1::RegressResponse response;
    for (size_t i = 0; i + 1 < c.requests.size(); ++i) {
      ASSERT_TRUE(stream.Exchange(c.requests[i], &response));
    }
    EXPECT_FALSE(stream.Exchange(c.requests.back(), &response));
    const grpc::Status status = stream.stream->Finish();
    EXPECT_EQ(status.error_code(), c.code) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(c.message));
  }
  // The server keeps serving.
  EXPECT_EQ(RunSplit(sine_.inputs, {10}, 1).size(), 10u);
}

// The value of `series` (name and labels) in the server's metrics; -1 when
// it is not there.
double MetricValue(TestServer& server, const std::string& series) {
  for (absl::string_view line :
       absl::StrSplit(server.metrics().Render(), '\n')) {
    if (absl::ConsumePrefix(&line, series + " ")) {
      double value = 0;
      if (absl::SimpleAtod(line, &value)) return value;
    }
  }
  return -1;
}

// Polls `condition` for up to 10 s: what the server does after a client
// cancels happens on its own threads, with nothing to tell the client.
bool Eventually(const std::function<bool()>& condition) {
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (!condition()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

constexpr char kSineCreated[] =
    "rnnserve_sessions_created_total{model=\"sine_rnn\",version=\"1\"}";
constexpr char kSineQueued[] =
    "rnnserve_queue_depth{method=\"Regress\",model=\"sine_rnn\",version="
    "\"1\"}";

// A session exists only once its first chunk is committed. Queued chunks
// wait a second for their batch here, so that a test can cancel a call
// while its first chunk waits.
class FirstChunkTest : public ::testing::Test {
 protected:
  FirstChunkTest() : server_(Models(), Options()) {}

  static std::vector<model::Model> Models() {
    return testing::LoadModels({"models/sine_rnn"});
  }
  static service::ServerOptions Options() {
    service::ServerOptions o;
    o.queue.max_queue_delay = absl::Seconds(1);
    return o;
  }
  int64_t Sessions() { return server_.server().sessions().Count().value(); }
  double Created() { return MetricValue(server_, kSineCreated); }
  // Waits until `steps` steps wait in the queue.
  bool Queued(double steps) {
    return Eventually(
        [&] { return MetricValue(server_, kSineQueued) == steps; });
  }
  // A first chunk that runs after whatever is queued now: once answered,
  // what was queued before it has run or been dropped.
  void RunAnotherSession() {
    auto context = ContextWithDeadline();
    v1::RegressResponse response;
    const grpc::Status s = stub_->RegressChunk(
        context.get(), Chunk(sine_.inputs, 0, 10, "sine_rnn"), &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  TestServer server_;
  std::unique_ptr<v1::Inference::Stub> stub_ = server_.NewStub();
  SineGolden sine_;
};

TEST_F(FirstChunkTest, FailedFirstChunksLeaveNoSession) {
  v1::RegressRequest nan = Chunk(sine_.inputs, 0, 3, "sine_rnn");
  nan.set_values(1, std::nanf(""));
  const double created = Created();
  ASSERT_GE(created, 0);
  for (int i = 0; i < 20; ++i) {
    OpenStream stream(*stub_);
    v1::RegressResponse response;
    EXPECT_FALSE(stream.Exchange(nan, &response));
    EXPECT_EQ(stream.stream->Finish().error_code(), grpc::INVALID_ARGUMENT);
    auto context = ContextWithDeadline();
    EXPECT_EQ(stub_->RegressChunk(context.get(), nan, &response).error_code(),
              grpc::INVALID_ARGUMENT);
  }
  EXPECT_EQ(Sessions(), 0);
  EXPECT_EQ(Created(), created);
}

TEST_F(FirstChunkTest, ACancelledFirstChunkOnAStreamLeavesNoSession) {
  const double created = Created();
  OpenStream stream(*stub_);
  ASSERT_TRUE(stream.stream->Write(Chunk(sine_.inputs, 0, 10, "sine_rnn")));
  // The chunk waits in the queue.
  ASSERT_TRUE(Queued(10));
  stream.context->TryCancel();
  EXPECT_EQ(stream.stream->Finish().error_code(), grpc::CANCELLED);
  RunAnotherSession();
  EXPECT_EQ(Sessions(), 1);
  EXPECT_EQ(Created(), created + 1);
}

TEST_F(FirstChunkTest, ACancelledFirstRegressChunkLeavesNoSession) {
  const double created = Created();
  auto context = ContextWithDeadline();
  const v1::RegressRequest request = Chunk(sine_.inputs, 0, 10, "sine_rnn");
  v1::RegressResponse response;
  absl::Notification done;
  grpc::Status status;
  stub_->async()->RegressChunk(context.get(), &request, &response,
                               [&](grpc::Status s) {
                                 status = std::move(s);
                                 done.Notify();
                               });
  ASSERT_TRUE(Queued(10));
  context->TryCancel();
  done.WaitForNotification();
  EXPECT_EQ(status.error_code(), grpc::CANCELLED);
  RunAnotherSession();
  EXPECT_EQ(Sessions(), 1);
  EXPECT_EQ(Created(), created + 1);
}

TEST_F(FirstChunkTest, ASuccessfulFirstChunkCreatesExactlyOneSession) {
  const double created = Created();
  {
    OpenStream stream(*stub_);
    v1::RegressResponse response;
    ASSERT_TRUE(
        stream.Exchange(Chunk(sine_.inputs, 0, 10, "sine_rnn"), &response));
    EXPECT_FALSE(response.session_token().empty());
    EXPECT_TRUE(stream.Close().ok());
  }
  EXPECT_EQ(Sessions(), 1);
  EXPECT_EQ(Created(), created + 1);
  auto context = ContextWithDeadline();
  v1::RegressResponse response;
  const grpc::Status s = stub_->RegressChunk(
      context.get(), Chunk(sine_.inputs, 0, 10, "sine_rnn"), &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Sessions(), 2);
  EXPECT_EQ(Created(), created + 2);
}

}  // namespace
}  // namespace rnnserve
