// Clients that misbehave: cancel mid-call, vanish mid-stream, stop halfway
// through a message. The server must keep serving, leak nothing (the
// AddressSanitizer build runs these too), keep the sessions of those clients
// resumable, and leave everyone else's untouched.
#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/test_server.h"

namespace rnnserve {
namespace {

using testing::ContextWithDeadline;
using testing::TestServer;
using Stream =
    grpc::ClientReaderWriter<v1::RegressRequest, v1::RegressResponse>;

// Chunking and batching may change the last bits only.
constexpr float kSameTolerance = 1e-6f;
constexpr int kSteps = 60;

std::vector<model::Model> Models() {
  return testing::LoadModels({"models/fashion_lstm", "models/sine_rnn"});
}

std::vector<float> Sine(float phase) {
  std::vector<float> x(kSteps);
  for (int k = 0; k < kSteps; ++k) x[k] = std::sin(phase + k * 0.3f);
  return x;
}

v1::RegressRequest Chunk(const std::vector<float>& x, int from, int steps,
                         const std::string& token = "") {
  return testing::ChunkRequest(x, from, steps, "sine_rnn", token);
}

// The whole stream in one chunk of a fresh session: what every split of it
// must reproduce.
std::vector<float> OnePass(v1::Inference::Stub& stub,
                           const std::vector<float>& x) {
  v1::RegressResponse response;
  auto context = ContextWithDeadline();
  EXPECT_TRUE(
      stub.RegressChunk(context.get(), Chunk(x, 0, kSteps), &response).ok());
  return {response.outputs().begin(), response.outputs().end()};
}

TEST(FaultTest, CallsCancelledAtAnyPointLeaveTheServerServing) {
  TestServer server(Models());
  auto stub = server.NewStub();
  v1::ClassifyRequest request;
  request.set_model("fashion_lstm");
  for (int i = 0; i < 64; ++i) {
    v1::Sequence* s = request.add_sequences();
    s->set_steps(28);
    s->mutable_values()->Resize(28 * 28, 0.01f * i);
  }
  v1::ClassifyResponse expected;
  {
    auto context = ContextWithDeadline();
    ASSERT_TRUE(stub->Classify(context.get(), request, &expected).ok());
  }
  // Deadlines from 50 us to 5 ms cut calls while queued, computing or
  // answering; a few finish.
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> micros(50, 5000);
  std::vector<std::thread> clients;
  std::atomic<int> finished{0}, cut{0}, wrong{0};
  for (int c = 0; c < 8; ++c) {
    const int seed = micros(rng);
    clients.emplace_back([&, seed] {
      std::mt19937 local(seed);
      auto own = server.NewStub();
      for (int k = 0; k < 25; ++k) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::microseconds(micros(local)));
        v1::ClassifyResponse response;
        const grpc::Status s = own->Classify(&context, request, &response);
        if (s.ok()) {
          ++finished;
          if (response.results(63).logits(0) !=
              expected.results(63).logits(0)) {
            ++wrong;
          }
        } else {
          // Under this load the queue may also be full of live calls.
          EXPECT_THAT(s.error_code(),
                      ::testing::AnyOf(grpc::DEADLINE_EXCEEDED, grpc::CANCELLED,
                                       grpc::RESOURCE_EXHAUSTED));
          ++cut;
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_GT(cut, 0);
  EXPECT_EQ(wrong, 0);
  v1::ClassifyResponse response;
  auto context = ContextWithDeadline();
  ASSERT_TRUE(stub->Classify(context.get(), request, &response).ok());
  EXPECT_EQ(response.results(63).logits(0), expected.results(63).logits(0));
}

TEST(FaultTest, AMessageCutHalfwayIsDroppedAndTheSessionSurvives) {
  // The huge chunk below is a valid request: had it arrived whole, it would
  // have run and moved the session far past step 20.
  constexpr int kHugeSteps = 15'000'000;  // 60 MB of floats.
  service::ServerOptions options;
  options.limits.max_steps = kHugeSteps;
  TestServer server(Models(), options);
  auto stub = server.NewStub();
  const std::vector<float> x = Sine(0.0f);
  const std::vector<float> want = OnePass(*stub, x);
  // A session with 20 steps run.
  std::string token;
  {
    auto context = ContextWithDeadline();
    auto stream = stub->Regress(context.get());
    v1::RegressResponse response;
    ASSERT_TRUE(stream->Write(Chunk(x, 0, 20)) && stream->Read(&response));
    token = response.session_token();
    stream->WritesDone();
    ASSERT_TRUE(stream->Finish().ok());
  }
  // The client resumes, starts sending a 60 MB chunk and vanishes while it
  // is on the wire: HTTP/2 flow control lets it out only as fast as the
  // server reads, so 2 ms in it is still being sent.
  {
    auto context = ContextWithDeadline(60);
    auto stream = stub->Regress(context.get());
    v1::RegressRequest huge = Chunk(x, 20, 1, token);
    huge.set_steps(kHugeSteps);
    huge.mutable_values()->Resize(kHugeSteps, 0.5f);
    std::thread cancel([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      context->TryCancel();
    });
    const bool sent = stream->Write(huge);
    cancel.join();
    const grpc::Status finished = stream->Finish();
    // The message never left whole, and the call ended by the client's
    // cancellation, not by any answer of the server.
    EXPECT_FALSE(sent) << "the whole message was sent before the cancel";
    EXPECT_EQ(finished.error_code(), grpc::CANCELLED)
        << finished.error_message();
  }
  // The session is as it was: resuming continues at step 20, exactly.
  v1::RegressResponse response;
  grpc::Status status;
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto context = ContextWithDeadline();
    status =
        stub->RegressChunk(context.get(), Chunk(x, 20, 40, token), &response);
    // Until the server has noticed the cut stream, the session is held.
    if (status.error_code() != grpc::FAILED_PRECONDITION) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.first_step(), 20u);
  for (int i = 0; i < 40; ++i) {
    EXPECT_NEAR(response.outputs(i), want[20 + i], kSameTolerance) << i;
  }
}

TEST(FaultTest, VanishingStreamsLeaveOtherSessionsUntouched) {
  TestServer server(Models());
  auto stub = server.NewStub();
  constexpr int kSessions = 16;
  std::vector<std::vector<float>> inputs, wants;
  for (int s = 0; s < kSessions; ++s) {
    inputs.push_back(Sine(0.4f * s));
    wants.push_back(OnePass(*stub, inputs.back()));
  }
  // Every session streams chunks of 6 steps; odd sessions vanish after a
  // few chunks, even ones stream to the end. All at once.
  std::vector<std::string> tokens(kSessions);
  std::vector<std::vector<float>> got(kSessions);
  std::vector<std::thread> clients;
  for (int s = 0; s < kSessions; ++s) {
    clients.emplace_back([&, s] {
      auto own = server.NewStub();
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(30));
      auto stream = own->Regress(&context);
      const int chunks = s % 2 ? 1 + s / 4 : kSteps / 6;
      for (int c = 0; c < chunks; ++c) {
        v1::RegressResponse response;
        if (!stream->Write(Chunk(inputs[s], c * 6, 6)) ||
            !stream->Read(&response)) {
          ADD_FAILURE() << "session " << s << " chunk " << c;
          return;
        }
        if (c == 0) tokens[s] = response.session_token();
        got[s].insert(got[s].end(), response.outputs().begin(),
                      response.outputs().end());
      }
      if (s % 2) {
        context.TryCancel();  // Gone without a word.
      } else {
        stream->WritesDone();
      }
      stream->Finish();
    });
  }
  for (std::thread& t : clients) t.join();
  for (int s = 0; s < kSessions; s += 2) {
    ASSERT_EQ(got[s].size(), wants[s].size());
    for (int i = 0; i < kSteps; ++i) {
      EXPECT_NEAR(got[s][i], wants[s][i], kSameTolerance)
          << "session " << s << " step " << i;
    }
  }
  // The vanished sessions resume where their last answer left them.
  for (int s = 1; s < kSessions; s += 2) {
    const int done = static_cast<int>(got[s].size());
    v1::RegressResponse response;
    grpc::Status status;
    for (int attempt = 0; attempt < 200; ++attempt) {
      auto context = ContextWithDeadline();
      status = stub->RegressChunk(
          context.get(), Chunk(inputs[s], done, kSteps - done, tokens[s]),
          &response);
      if (status.error_code() != grpc::FAILED_PRECONDITION) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.first_step(), static_cast<uint64_t>(done));
    for (int i = 0; i < kSteps - done; ++i) {
      EXPECT_NEAR(response.outputs(i), wants[s][done + i], kSameTolerance)
          << "session " << s << " step " << done + i;
    }
  }
}

}  // namespace
}  // namespace rnnserve
