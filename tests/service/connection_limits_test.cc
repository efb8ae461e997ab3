// --max-streams-per-connection: one connection cannot hold more calls open
// than the limit, while other connections are unaffected.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace rnnserve {
namespace {

using testing::ContextWithDeadline;
using testing::TestServer;

using Stream =
    grpc::ClientReaderWriter<v1::RegressRequest, v1::RegressResponse>;

v1::RegressRequest Chunk() {
  v1::RegressRequest request;
  request.set_model("sine_rnn");
  request.set_steps(10);
  request.mutable_values()->Resize(10, 0.5f);
  return request;
}

// A Regress stream that has been answered once, so it holds its HTTP/2
// stream (and a session) until closed.
struct OpenStream {
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<Stream> stream;

  OpenStream(v1::Inference::Stub& stub, double deadline_seconds = 30)
      : context(ContextWithDeadline(deadline_seconds)),
        stream(stub.Regress(context.get())) {}

  bool Answered() {
    v1::RegressResponse response;
    return stream->Write(Chunk()) && stream->Read(&response) &&
           response.outputs_size() == 10;
  }
  grpc::Status Close() {
    stream->WritesDone();
    v1::RegressResponse extra;
    while (stream->Read(&extra)) {
    }
    return stream->Finish();
  }
};

TEST(ConnectionLimitsTest, StreamsBeyondTheLimitWaitForAFreeOne) {
  service::ServerOptions options;
  options.max_streams_per_connection = 2;
  TestServer server(testing::LoadModels({"models/sine_rnn"}), options);
  ASSERT_TRUE(server.ok());
  // One channel: one connection.
  auto stub = server.NewStub();
  OpenStream first(*stub), second(*stub);
  ASSERT_TRUE(first.Answered());
  ASSERT_TRUE(second.Answered());

  // A third stream on the same connection cannot start: the client holds
  // it until a stream frees up, here until its deadline. (If the limit were
  // not applied it would be answered at once; it can never pass by luck.)
  OpenStream third(*stub, /*deadline_seconds=*/1);
  EXPECT_FALSE(third.Answered());
  EXPECT_EQ(third.Close().error_code(), grpc::DEADLINE_EXCEEDED);

  // Another connection has its own allowance.
  auto other_stub = server.NewStub();
  OpenStream elsewhere(*other_stub);
  EXPECT_TRUE(elsewhere.Answered());
  EXPECT_TRUE(elsewhere.Close().ok());

  // Once a stream closes, the first connection takes a new one.
  EXPECT_TRUE(first.Close().ok());
  OpenStream fourth(*stub);
  EXPECT_TRUE(fourth.Answered());
  EXPECT_TRUE(fourth.Close().ok());
  EXPECT_TRUE(second.Close().ok());
}

}  // namespace
}  // namespace rnnserve
