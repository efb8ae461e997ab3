// The unary calls' plumbing on a real server: text fields that are not
// UTF-8 (on a Regress stream too) and bodies that are no message are
// refused by name without a log line; a RegressChunk whose client stopped
// waiting before its answer was sent leaves its session where it was and is
// counted by what happened; RegressChunk's queue waits are its own series.
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/clock.h"
#include "tests/testing/test_server.h"

namespace rnnserve {
namespace {

using testing::ContextWithDeadline;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::TestServer;

// Chunking may change the last bits only.
constexpr float kSameTolerance = 1e-6f;
constexpr int kSteps = 60;

std::vector<float> Sine() {
  std::vector<float> x(kSteps);
  for (int k = 0; k < kSteps; ++k) x[k] = std::sin(0.7f + k * 0.3f);
  return x;
}

v1::RegressRequest Chunk(const std::vector<float>& x, int from, int steps,
                         const std::string& token) {
  return testing::ChunkRequest(x, from, steps, "sine_rnn", token);
}

// Waits up to 20 s for `done`; a condition, not a timing.
bool WaitFor(const std::function<bool()>& done) {
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

class UnaryCallTest : public ::testing::Test {
 protected:
  UnaryCallTest()
      : server_(testing::LoadModels({"models/fashion_lstm", "models/sine_rnn"}),
                Options(this)),
        stub_(server_.NewStub()) {}

  static service::ServerOptions Options(UnaryCallTest* test) {
    service::ServerOptions options;
    options.chunk_computed_hook = [test](const runtime::RuntimeTask& task) {
      if (test->hold_) test->hold_(task);
    };
    return options;
  }

  // One message of raw bytes to `method`.
  grpc::Status CallRaw(const std::string& method, const std::string& bytes) {
    return testing::CallRaw(*server_.NewChannel(), *ContextWithDeadline(),
                            method, bytes);
  }

  v1::RegressResponse RunChunk(const v1::RegressRequest& request) {
    v1::RegressResponse response;
    auto context = ContextWithDeadline();
    const grpc::Status s =
        stub_->RegressChunk(context.get(), request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  }

  double Metric(const std::string& series) {
    const std::string text = server_.metrics().Render();
    const size_t at = text.find(series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + series.size() + 1));
  }

  // Runs a chunk whose answer is held on the compute thread by `hold`
  // after `interrupt` (run on this thread once the compute is done) until
  // the server has seen the client stop waiting; then checks that the
  // session did not move and that the call is counted under `code`.
  void ExpectInterruptedChunkIsNotCommitted(
      std::unique_ptr<grpc::ClientContext> context,
      const std::function<void(grpc::ClientContext&)>& interrupt,
      const std::function<bool(const runtime::RuntimeTask&)>& server_saw_it,
      grpc::StatusCode client_code, const std::string& code) {
    const std::vector<float> x = Sine();
    // The whole sequence in one chunk: what every split must give.
    const v1::RegressResponse whole = RunChunk(Chunk(x, 0, kSteps, ""));
    const v1::RegressResponse first = RunChunk(Chunk(x, 0, 20, ""));
    const std::string token = first.session_token();

    absl::Notification computed, seen;
    bool server_saw = false;
    hold_ = [&](const runtime::RuntimeTask& task) {
      computed.Notify();
      server_saw = WaitFor([&] { return server_saw_it(task); });
      seen.Notify();
    };
    const v1::RegressRequest second = Chunk(x, 20, 20, token);
    v1::RegressResponse lost;
    grpc::Status status;
    absl::Notification answered;
    stub_->async()->RegressChunk(context.get(), &second, &lost,
                                 [&](grpc::Status s) {
                                   status = std::move(s);
                                   answered.Notify();
                                 });
    ASSERT_TRUE(computed.WaitForNotificationWithTimeout(absl::Seconds(20)));
    interrupt(*context);
    ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(20)));
    EXPECT_EQ(status.error_code(), client_code) << status.error_message();
    ASSERT_TRUE(seen.WaitForNotificationWithTimeout(absl::Seconds(20)));
    hold_ = nullptr;
    EXPECT_TRUE(server_saw);
    // The call is counted once the server has finished it, after it let
    // the session go.
    const std::string series = "rnnserve_requests_total{code=\"" + code +
                               "\",method=\"RegressChunk\",model=\"sine_rnn\","
                               "version=\"1\"}";
    EXPECT_TRUE(WaitFor([&] { return Metric(series) == 1; }))
        << server_.metrics().Render();

    // The client retries the same chunk: it starts where the first ended.
    const v1::RegressResponse again = RunChunk(second);
    EXPECT_EQ(again.first_step(), 20u);
    const v1::RegressResponse last = RunChunk(Chunk(x, 40, 20, token));
    EXPECT_EQ(last.first_step(), 40u);
    std::vector<float> outputs(first.outputs().begin(), first.outputs().end());
    outputs.insert(outputs.end(), again.outputs().begin(),
                   again.outputs().end());
    outputs.insert(outputs.end(), last.outputs().begin(), last.outputs().end());
    ASSERT_EQ(outputs.size(), static_cast<size_t>(whole.outputs_size()));
    for (size_t i = 0; i < outputs.size(); ++i) {
      EXPECT_NEAR(outputs[i], whole.outputs(i), kSameTolerance) << i;
    }
    // Only the interrupted call is counted that way; the others were OK.
    EXPECT_EQ(Metric(series), 1);
    EXPECT_EQ(Metric("rnnserve_requests_total{code=\"OK\",method="
                     "\"RegressChunk\",model=\"sine_rnn\",version=\"1\"}"),
              4);
  }

  // Set before the calls it holds; read on a compute thread.
  std::function<void(const runtime::RuntimeTask&)> hold_;
  TestServer server_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

// The request's bytes with `value` appended as field `number`: how a client
// whose library does not check UTF-8 sends a text field that is not UTF-8
// (protobuf keeps the last occurrence of a field).
std::string WithText(const google::protobuf::Message& request, int number,
                     const std::string& value) {
  std::string bytes = request.SerializeAsString();
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  google::protobuf::internal::WireFormatLite::WriteBytes(number, value, &coded);
  return bytes;
}

TEST_F(UnaryCallTest, TextFieldsThatAreNotUtf8AreRefusedByName) {
  const v1::RegressRequest chunk = Chunk(Sine(), 0, 1, "");
  v1::ClassifyRequest classify;
  classify.set_model("fashion_lstm");
  v1::Sequence* sequence = classify.add_sequences();
  sequence->set_steps(28);
  sequence->mutable_values()->Resize(28 * 28, 0.25f);
  v1::GetModelRequest get_model;
  get_model.set_model("fashion_lstm");
  struct Case {
    std::string method;
    std::string bytes;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"Classify", WithText(classify, 1, "fashion_lstm\xff"),
       "model: not valid UTF-8"},
      // An encoded surrogate, and a cut-short sequence.
      {"RegressChunk", WithText(chunk, 1, "\xed\xa0\x80"),
       "model: not valid UTF-8"},
      {"RegressChunk", WithText(chunk, 2, "abc\xc3"),
       "session_token: not valid UTF-8"},
      // An overlong '/'.
      {"GetModel", WithText(get_model, 1, "\xc0\xaf"),
       "model: not valid UTF-8"},
  };
  ::testing::internal::CaptureStderr();
  for (const Case& c : cases) {
    const grpc::Status s =
        CallRaw("/rnnserve.v1.Inference/" + c.method, c.bytes);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << c.method;
    EXPECT_EQ(s.error_message(), c.message) << c.method;
  }
  // Well-formed UTF-8 that names no model gets past the check.
  EXPECT_EQ(CallRaw("/rnnserve.v1.Inference/GetModel",
                    WithText(get_model, 1, "mod\xc3\xa8le"))
                .error_code(),
            grpc::NOT_FOUND);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              Not(HasSubstr("libprotobuf")));
  EXPECT_EQ(server_.server().sessions().Count().value(), 0);

  // The server still serves, the same calls well-formed.
  v1::ClassifyResponse classified;
  EXPECT_TRUE(
      stub_->Classify(ContextWithDeadline().get(), classify, &classified).ok());
  EXPECT_EQ(classified.results_size(), 1);
  v1::ModelInfo info;
  EXPECT_TRUE(
      stub_->GetModel(ContextWithDeadline().get(), get_model, &info).ok());
  EXPECT_EQ(RunChunk(chunk).outputs_size(), 1);
}

// A Regress stream of raw messages: writes them in order, half-closes,
// and collects every response and the status.
class RawRegressStream final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit RawRegressStream(std::vector<std::string> requests)
      : requests_(std::move(requests)) {}

  grpc::Status Run(grpc::GenericStub& stub, grpc::ClientContext& context) {
    stub.PrepareBidiStreamingCall(&context, "/rnnserve.v1.Inference/Regress",
                                  grpc::StubOptions(), this);
    StartRead(&in_);
    WriteNext();
    StartCall();
    done_.WaitForNotification();
    return status_;
  }

  // Valid once Run has returned.
  const std::vector<v1::RegressResponse>& responses() const {
    return responses_;
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    v1::RegressResponse response;
    EXPECT_TRUE(grpc::SerializationTraits<v1::RegressResponse>::Deserialize(
                    &in_, &response)
                    .ok());
    responses_.push_back(std::move(response));
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    if (ok) WriteNext();
  }
  void OnDone(const grpc::Status& status) override {
    status_ = status;
    done_.Notify();
  }

 private:
  void WriteNext() {
    if (next_ == requests_.size()) {
      StartWritesDone();
      return;
    }
    const std::string& bytes = requests_[next_++];
    grpc::Slice slice(bytes.data(), bytes.size());
    out_ = grpc::ByteBuffer(&slice, 1);
    StartWrite(&out_);
  }

  const std::vector<std::string> requests_;
  size_t next_ = 0;
  grpc::ByteBuffer in_;
  grpc::ByteBuffer out_;
  std::vector<v1::RegressResponse> responses_;
  grpc::Status status_;
  absl::Notification done_;
};

TEST_F(UnaryCallTest, RegressStreamTextThatIsNotUtf8IsRefusedByName) {
  grpc::GenericStub stub(server_.NewChannel());
  const std::vector<float> x = Sine();
  const auto run = [&](std::vector<std::string> requests) {
    auto stream = std::make_unique<RawRegressStream>(std::move(requests));
    auto context = ContextWithDeadline();
    const grpc::Status status = stream->Run(stub, *context);
    return std::make_pair(status, stream->responses());
  };
  ::testing::internal::CaptureStderr();
  // On the first message, before any session exists.
  auto [status, responses] = run({WithText(Chunk(x, 0, 1, ""), 1, "\xff")});
  EXPECT_EQ(status.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "model: not valid UTF-8");
  EXPECT_TRUE(responses.empty());
  std::tie(status, responses) =
      run({WithText(Chunk(x, 0, 1, ""), 2, "abc\xc3")});
  EXPECT_EQ(status.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "session_token: not valid UTF-8");
  EXPECT_TRUE(responses.empty());
  EXPECT_EQ(server_.server().sessions().Count().value(), 0);
  // On a later message: the first is answered, the stream ends at the bad
  // one, and the session stays where the answered chunk left it.
  v1::RegressRequest next = Chunk(x, 10, 10, "");
  next.clear_model();
  std::tie(status, responses) =
      run({Chunk(x, 0, 10, "").SerializeAsString(),
           WithText(next, 2, "\xed\xa0\x80"), next.SerializeAsString()});
  EXPECT_EQ(status.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "session_token: not valid UTF-8");
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              Not(HasSubstr("libprotobuf")));

  // The server still serves, and the session resumes after its first chunk.
  const std::string token = responses[0].session_token();
  ASSERT_FALSE(token.empty());
  std::tie(status, responses) = run(
      {Chunk(x, 10, 10, token).SerializeAsString(), next.SerializeAsString()});
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[0].first_step(), 10u);
  EXPECT_EQ(responses[1].first_step(), 20u);
}

TEST_F(UnaryCallTest, BytesThatAreNoMessageAreRefusedNamingTheMessage) {
  // Field 1 as a varint, then a truncated length-delimited field.
  const std::string garbage = "\x08\x96\x01\x12\x7f\xff\xff";
  ::testing::internal::CaptureStderr();
  for (const auto& [method, message] :
       std::vector<std::pair<std::string, std::string>>{
           {"Classify", "rnnserve.v1.ClassifyRequest"},
           {"RegressChunk", "rnnserve.v1.RegressRequest"},
           {"GetModel", "rnnserve.v1.GetModelRequest"},
           {"ListModels", "rnnserve.v1.ListModelsRequest"}}) {
    const grpc::Status s = CallRaw("/rnnserve.v1.Inference/" + method, garbage);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << method;
    EXPECT_EQ(s.error_message(), "request: not a valid " + message + " message")
        << method;
  }
  // On a Regress stream, as its first message.
  grpc::GenericStub stub(server_.NewChannel());
  RawRegressStream stream({garbage});
  const grpc::Status s = stream.Run(stub, *ContextWithDeadline());
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "request: not a valid rnnserve.v1.RegressRequest message");
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              Not(HasSubstr("libprotobuf")));
  // Methods the service does not have stay UNIMPLEMENTED.
  EXPECT_EQ(CallRaw("/rnnserve.v1.Inference/Nothing", "").error_code(),
            grpc::UNIMPLEMENTED);
  EXPECT_EQ(CallRaw("/other.Service/Classify", "").error_code(),
            grpc::UNIMPLEMENTED);
}

TEST_F(UnaryCallTest, TopKOf2To31OrMoreReturnsEveryClass) {
  for (uint32_t top_k : {10u, 0x7fffffffu, 0x80000000u, 0xffffffffu}) {
    v1::ClassifyRequest request;
    request.set_model("fashion_lstm");
    request.set_top_k(top_k);
    v1::Sequence* s = request.add_sequences();
    s->set_steps(28);
    s->mutable_values()->Resize(28 * 28, 0.25f);
    v1::ClassifyResponse response;
    const grpc::Status status =
        stub_->Classify(ContextWithDeadline().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.results_size(), 1);
    // Clamped to the model's 10 classes, most probable first.
    const v1::Classification& result = response.results(0);
    ASSERT_EQ(result.top_size(), 10) << top_k;
    for (int j = 1; j < result.top_size(); ++j) {
      EXPECT_GE(result.top(j - 1).probability(), result.top(j).probability());
    }
  }
}

TEST_F(UnaryCallTest, AChunkCancelledWhileComputingIsNotCommitted) {
  ExpectInterruptedChunkIsNotCommitted(
      ContextWithDeadline(),
      [](grpc::ClientContext& context) { context.TryCancel(); },
      [](const runtime::RuntimeTask& task) { return task.cancelled(); },
      grpc::StatusCode::CANCELLED, "CANCELLED");
}

TEST_F(UnaryCallTest, AChunkPastItsDeadlineWhenComputedIsNotCommitted) {
  // The deadline passes while the compute is held: the server finds it
  // passed when it would answer.
  ExpectInterruptedChunkIsNotCommitted(
      ContextWithDeadline(2), [](grpc::ClientContext&) {},
      [](const runtime::RuntimeTask& task) {
        // Task deadlines are on the monotonic clock.
        return SteadyClock::MonotonicNow() > task.deadline;
      },
      grpc::StatusCode::DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED");
}

// RegressChunk's queue waits and batches are its own series, not Regress's.
TEST_F(UnaryCallTest, RegressChunkIsMeasuredUnderItsOwnMethod) {
  const std::vector<float> x = Sine();
  RunChunk(Chunk(x, 0, 20, ""));
  RunChunk(Chunk(x, 0, 20, ""));
  const std::string labels = ",model=\"sine_rnn\",version=\"1\"}";
  EXPECT_EQ(Metric("rnnserve_queue_wait_seconds_count{method=\"RegressChunk\"" +
                   labels),
            2);
  EXPECT_EQ(
      Metric("rnnserve_queue_wait_seconds_count{method=\"Regress\"" + labels),
      0);
  // Each ran alone: two batches of RegressChunk calls only.
  EXPECT_EQ(Metric("rnnserve_compute_duration_seconds_count{method="
                   "\"RegressChunk\"" +
                   labels),
            2);
}

}  // namespace
}  // namespace rnnserve
