// Bearer-token authentication: the tokens file, the check itself, and a real
// server that refuses every rnnserve.v1.Inference call without a valid
// token while health checks and reflection stay open.
#include <grpcpp/generic/generic_stub.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "inference/grpc_predict_v2.pb.h"
#include "server/service/bearer_tokens.h"
#include "server/service/unary_call.h"
#include "tests/testing/test_server.h"

namespace rnnserve {
namespace {

using service::BearerTokens;
using testing::ContextWithDeadline;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::TestServer;

constexpr char kToken[] = "k9VY3x0Zq8rS1tUe7wP2mN5bQ4aL6cD0";
constexpr char kOtherToken[] = "other.token_with~all+allowed/chars==";
constexpr char kTokensFile[] =
    "# rnnserve bearer tokens\n"
    "\n"
    "  k9VY3x0Zq8rS1tUe7wP2mN5bQ4aL6cD0  \n"
    "other.token_with~all+allowed/chars==\n";

std::string Bearer(const std::string& token) { return "Bearer " + token; }

TEST(BearerTokensTest, ParsesTokensSkippingCommentsAndBlankLines) {
  auto tokens = BearerTokens::Parse(kTokensFile);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(tokens->size(), 2);
  EXPECT_TRUE(tokens->Accepts(Bearer(kToken)));
  EXPECT_TRUE(tokens->Accepts(Bearer(kOtherToken)));
  // The scheme is case-insensitive (RFC 7235); the token is not.
  EXPECT_TRUE(tokens->Accepts("bearer " + std::string(kToken)));
  EXPECT_TRUE(tokens->Accepts("BEARER " + std::string(kToken)));
}

TEST(BearerTokensTest, RefusesAnythingButAConfiguredToken) {
  auto tokens = BearerTokens::Parse(kTokensFile);
  ASSERT_TRUE(tokens.ok());
  const std::string token = kToken;
  for (const std::string& header : std::vector<std::string>{
           "", "Bearer", "Bearer ", token, "Basic " + token,
           "Bearer " + token.substr(0, token.size() - 1),
           "Bearer " + token + "x", "Bearer  " + token, "Bearer " + token + " ",
           "Bearer k9vy3x0zq8rs1tue7wp2mn5bq4al6cd0",
           "Bearer # rnnserve bearer tokens", "Bearer \n"}) {
    EXPECT_FALSE(tokens->Accepts(header)) << "'" << header << "'";
  }
}

TEST(BearerTokensTest, RefusesFilesWithoutGoodTokensAndNeverEchoesThem) {
  for (const char* file : {"", "\n\n", "# only a comment\n  \n"}) {
    auto tokens = BearerTokens::Parse(file);
    ASSERT_FALSE(tokens.ok()) << "'" << file << "'";
    EXPECT_THAT(std::string(tokens.status().message()), HasSubstr("no token"));
  }
  // A space inside a line, a quote, a ':' header line: not b64tokens.
  for (const char* line :
       {"two secret-halves-of-one-token", "\"secret-quoted-token-x\"",
        "authorization: Bearer secret-token-abcdef"}) {
    auto tokens = BearerTokens::Parse(std::string("# c\n") + line + "\n");
    ASSERT_FALSE(tokens.ok()) << line;
    const std::string message(tokens.status().message());
    EXPECT_THAT(message, HasSubstr("line 2"));
    EXPECT_THAT(message, Not(HasSubstr("secret")));
  }
  auto short_token = BearerTokens::Parse("secret12\n");
  ASSERT_FALSE(short_token.ok());
  EXPECT_THAT(std::string(short_token.status().message()),
              HasSubstr("at least 16"));
  EXPECT_THAT(std::string(short_token.status().message()),
              Not(HasSubstr("secret")));
}

TEST(BearerTokensTest, CallerIdIsTheTokensDigestNeverTheToken) {
  const std::string id = BearerTokens::CallerId(Bearer(kToken));
  EXPECT_EQ(id.size(), 32u);
  EXPECT_THAT(id, Not(HasSubstr(kToken)));
  EXPECT_EQ(BearerTokens::CallerId("bEaReR " + std::string(kToken)), id);
  EXPECT_NE(BearerTokens::CallerId(Bearer(kOtherToken)), id);
  EXPECT_EQ(BearerTokens::CallerId("Basic " + std::string(kToken)), "");
}

TEST(BearerTokensTest, LoadNamesTheFile) {
  auto tokens = BearerTokens::Load("/nonexistent/rnnserve-tokens");
  ASSERT_FALSE(tokens.ok());
  EXPECT_THAT(std::string(tokens.status().message()),
              HasSubstr("/nonexistent/rnnserve-tokens"));
}

class AuthTest : public ::testing::Test {
 protected:
  AuthTest()
      : server_(testing::LoadModels({"models/fashion_lstm", "models/sine_rnn"}),
                Options()) {}

  static service::ServerOptions Options() {
    service::ServerOptions options;
    auto tokens = BearerTokens::Parse(kTokensFile);
    EXPECT_TRUE(tokens.ok());
    if (tokens.ok()) options.bearer_tokens = *tokens;
    return options;
  }

  // A context with `authorization` set to `header`, or none if empty.
  static std::unique_ptr<grpc::ClientContext> Context(
      const std::string& header) {
    auto context = ContextWithDeadline();
    if (!header.empty()) context->AddMetadata("authorization", header);
    return context;
  }

  static v1::ClassifyRequest Image() {
    v1::ClassifyRequest request;
    request.set_model("fashion_lstm");
    v1::Sequence* s = request.add_sequences();
    s->set_steps(28);
    s->mutable_values()->Resize(28 * 28, 0.25f);
    return request;
  }

  grpc::Status Classify(const std::string& header) {
    v1::ClassifyResponse response;
    return server_.NewStub()->Classify(Context(header).get(), Image(),
                                       &response);
  }

  // A method of any service called with one message of raw bytes (empty:
  // all defaults); for a streaming method, one request and a half-close.
  grpc::Status CallRaw(const std::string& method, const std::string& header,
                       const std::string& request_bytes = "",
                       std::string* response_bytes = nullptr) {
    return testing::CallRaw(*server_.NewChannel(), *Context(header), method,
                            request_bytes, response_bytes);
  }

  TestServer server_;
};

TEST_F(AuthTest, ClassifyWithAConfiguredTokenIsServed) {
  const grpc::Status first = Classify(Bearer(kToken));
  EXPECT_TRUE(first.ok()) << first.error_message();
  const grpc::Status second = Classify(Bearer(kOtherToken));
  EXPECT_TRUE(second.ok()) << second.error_message();
}

TEST_F(AuthTest, ClassifyWithAWrongOrMissingTokenIsUnauthenticated) {
  const std::string wrong = "wrong-token-0123456789abcdef";
  for (const std::string& header :
       {Bearer(wrong), std::string(""), wrong, "Basic " + wrong}) {
    const grpc::Status s = Classify(header);
    EXPECT_EQ(s.error_code(), grpc::UNAUTHENTICATED) << "'" << header << "'";
    EXPECT_THAT(s.error_message(), Not(HasSubstr(wrong)));
    EXPECT_THAT(s.error_message(), Not(HasSubstr(kToken)));
  }
  EXPECT_THAT(Classify("").error_message(), HasSubstr("Bearer"));
}

TEST_F(AuthTest, TwoAuthorizationHeadersAreRefused) {
  auto context = Context(Bearer(kToken));
  context->AddMetadata("authorization", Bearer("wrong-token-0123456789"));
  v1::ClassifyResponse response;
  EXPECT_EQ(server_.NewStub()
                ->Classify(context.get(), Image(), &response)
                .error_code(),
            grpc::UNAUTHENTICATED);
}

TEST_F(AuthTest, RegressStreamWithAConfiguredTokenIsServed) {
  auto context = Context(Bearer(kToken));
  auto stream = server_.NewStub()->Regress(context.get());
  std::string session;
  for (int chunk = 0; chunk < 3; ++chunk) {
    v1::RegressRequest request;
    request.set_model("sine_rnn");
    request.set_steps(10);
    request.mutable_values()->Resize(10, 0.1f * chunk);
    ASSERT_TRUE(stream->Write(request));
    v1::RegressResponse response;
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.outputs_size(), 10);
    EXPECT_EQ(response.first_step(), 10 * chunk);
    if (chunk == 0) session = response.session_token();
  }
  stream->WritesDone();
  const grpc::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(session.empty());
}

TEST_F(AuthTest, RegressStreamWithoutATokenIsRefusedBeforeAnySession) {
  auto context = Context("");
  auto stream = server_.NewStub()->Regress(context.get());
  v1::RegressRequest request;
  request.set_model("sine_rnn");
  request.set_steps(1);
  request.add_values(0.5f);
  stream->Write(request);  // May fail: the server may have finished already.
  v1::RegressResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::UNAUTHENTICATED);
  EXPECT_EQ(server_.server().sessions().Count().value(), 0);
}

// Every method of the service, those added later included, is guarded.
TEST_F(AuthTest, EveryInferenceMethodRequiresAToken) {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          "rnnserve.v1.Inference");
  ASSERT_NE(service, nullptr);
  ASSERT_GE(service->method_count(), 5);
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string method =
        "/rnnserve.v1.Inference/" + service->method(i)->name();
    for (const std::string& header :
         {std::string(""), Bearer("wrong-token-0123456789abcdef")}) {
      EXPECT_EQ(CallRaw(method, header).error_code(), grpc::UNAUTHENTICATED)
          << method << " '" << header << "'";
    }
  }
  // With the token, the same empty requests get past authentication.
  EXPECT_TRUE(
      CallRaw("/rnnserve.v1.Inference/ListModels", Bearer(kToken)).ok());
  EXPECT_EQ(server_.server().sessions().Count().value(), 0);
  // Each refusal was counted, by method.
  const std::string metrics = server_.metrics().Render();
  for (int i = 0; i < service->method_count(); ++i) {
    EXPECT_THAT(metrics, HasSubstr("rnnserve_auth_refused_total{method=\"" +
                                   service->method(i)->name() + "\"} 2"));
  }
}

// The Open Inference Protocol's methods are guarded the same way, each
// refusal counted under its own method.
TEST_F(AuthTest, EveryOpenInferenceProtocolMethodRequiresAToken) {
  const google::protobuf::ServiceDescriptor* service =
      inference::ModelInferRequest::descriptor()->file()->FindServiceByName(
          "GRPCInferenceService");
  ASSERT_NE(service, nullptr);
  ASSERT_GE(service->method_count(), 6);
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string method =
        "/inference.GRPCInferenceService/" + service->method(i)->name();
    for (const std::string& header :
         {std::string(""), Bearer("wrong-token-0123456789abcdef")}) {
      EXPECT_EQ(CallRaw(method, header).error_code(), grpc::UNAUTHENTICATED)
          << method << " '" << header << "'";
    }
  }
  // With the token, the same empty requests get past authentication.
  EXPECT_TRUE(
      CallRaw("/inference.GRPCInferenceService/ServerLive", Bearer(kToken))
          .ok());
  const std::string metrics = server_.metrics().Render();
  for (int i = 0; i < service->method_count(); ++i) {
    EXPECT_THAT(metrics, HasSubstr("rnnserve_auth_refused_total{method=\"" +
                                   service->method(i)->name() + "\"} 2"));
  }
}

// A refused call's body is never read: a caller without a token cannot make
// the server buffer or parse tens of MiB. The server counts the bytes of
// every unary body it reads; the same call with the token shows the count
// would have seen it.
TEST_F(AuthTest, AnUnauthenticatedLargeCallIsRefusedBeforeItsBodyIsRead) {
  v1::ClassifyRequest big = Image();
  // 40 MiB of values: too many for the model, but a valid message.
  big.mutable_sequences(0)->mutable_values()->Resize(10 << 20, 0.5f);
  const std::string bytes = big.SerializeAsString();
  ASSERT_GT(bytes.size(), 40u << 20);
  const std::string method = "/rnnserve.v1.Inference/Classify";

  const int64_t before = service::UnaryRequestBytesRead();
  for (const std::string& header :
       {std::string(""), Bearer("wrong-token-0123456789abcdef")}) {
    EXPECT_EQ(CallRaw(method, header, bytes).error_code(),
              grpc::UNAUTHENTICATED);
  }
  // Bytes that are no message at all: refused for the token, not parsed.
  EXPECT_EQ(CallRaw(method, "", "\xff\xff\xff\xff").error_code(),
            grpc::UNAUTHENTICATED);
  EXPECT_EQ(service::UnaryRequestBytesRead(), before);

  // With the token the body is read (and refused on its merits).
  const grpc::Status served = CallRaw(method, Bearer(kToken), bytes);
  EXPECT_EQ(served.error_code(), grpc::INVALID_ARGUMENT)
      << served.error_message();
  EXPECT_EQ(service::UnaryRequestBytesRead() - before,
            static_cast<int64_t>(bytes.size()));
}

TEST_F(AuthTest, HealthAndReflectionNeedNoToken) {
  auto health = grpc::health::v1::Health::NewStub(server_.NewChannel());
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("rnnserve.v1.Inference");
  grpc::health::v1::HealthCheckResponse response;
  auto context = ContextWithDeadline();
  const grpc::Status s = health->Check(context.get(), request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  // ServerReflectionRequest{list_services: ""}: field 7, length 0.
  std::string services;
  const grpc::Status listed =
      CallRaw("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
              "", std::string("\x3a\x00", 2), &services);
  ASSERT_TRUE(listed.ok()) << listed.error_message();
  EXPECT_THAT(services, HasSubstr("rnnserve.v1.Inference"));
}

// Sessions bound to their bearer token, and each token's quotas of sessions
// and of calls in flight. Each test starts its own server with the options
// it needs.
class TokenQuotaTest : public ::testing::Test {
 protected:
  using Stream =
      grpc::ClientReaderWriter<v1::RegressRequest, v1::RegressResponse>;

  // One Regress stream of one token.
  struct OpenStream {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<Stream> stream;
    OpenStream(v1::Inference::Stub& stub, const std::string& token)
        : context(Context(token)), stream(stub.Regress(context.get())) {}
    // One chunk and its answer; the stream's status if it ended instead.
    grpc::Status Exchange(const v1::RegressRequest& request,
                          v1::RegressResponse* response = nullptr) {
      v1::RegressResponse ignored;
      if (stream->Write(request) &&
          stream->Read(response == nullptr ? &ignored : response)) {
        return grpc::Status::OK;
      }
      return stream->Finish();
    }
    grpc::Status Close() {
      stream->WritesDone();
      v1::RegressResponse extra;
      while (stream->Read(&extra)) {
      }
      return stream->Finish();
    }
  };

  void Start(service::ServerOptions options, bool with_tokens = true) {
    if (with_tokens) {
      auto tokens = BearerTokens::Parse(kTokensFile);
      ASSERT_TRUE(tokens.ok());
      options.bearer_tokens = *tokens;
    }
    server_ = std::make_unique<TestServer>(
        testing::LoadModels({"models/fashion_lstm", "models/sine_rnn"}),
        options);
    ASSERT_TRUE(server_->ok());
    stub_ = server_->NewStub();
  }

  static std::unique_ptr<grpc::ClientContext> Context(
      const std::string& token) {
    auto context = ContextWithDeadline();
    if (!token.empty()) context->AddMetadata("authorization", Bearer(token));
    return context;
  }

  static v1::RegressRequest Chunk(const std::string& session = "") {
    v1::RegressRequest request;
    request.set_model("sine_rnn");
    request.set_session_token(session);
    request.set_steps(10);
    request.mutable_values()->Resize(10, 0.5f);
    return request;
  }

  grpc::Status RegressChunk(const std::string& token,
                            const v1::RegressRequest& request,
                            v1::RegressResponse* response = nullptr) {
    v1::RegressResponse ignored;
    return stub_->RegressChunk(Context(token).get(), request,
                               response == nullptr ? &ignored : response);
  }

  grpc::Status Classify(const std::string& token) {
    v1::ClassifyRequest request;
    request.set_model("fashion_lstm");
    v1::Sequence* s = request.add_sequences();
    s->set_steps(28);
    s->mutable_values()->Resize(28 * 28, 0.25f);
    v1::ClassifyResponse response;
    return stub_->Classify(Context(token).get(), request, &response);
  }

  // A new session of `token`'s; empty on failure.
  std::string NewSession(const std::string& token) {
    v1::RegressResponse response;
    const grpc::Status s = RegressChunk(token, Chunk(), &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.session_token();
  }

  std::unique_ptr<TestServer> server_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

TEST_F(TokenQuotaTest, ASessionAnswersOnlyToTheTokenThatCreatedIt) {
  Start({});
  const std::string session = NewSession(kToken);
  ASSERT_FALSE(session.empty());
  const grpc::Status unknown = RegressChunk(kOtherToken, Chunk("no-such-x"));
  ASSERT_EQ(unknown.error_code(), grpc::NOT_FOUND);
  // Another token's call learns nothing: the unknown token's answer.
  const grpc::Status unary = RegressChunk(kOtherToken, Chunk(session));
  EXPECT_EQ(unary.error_code(), grpc::NOT_FOUND);
  EXPECT_EQ(unary.error_message(), unknown.error_message());
  OpenStream stream(*stub_, kOtherToken);
  const grpc::Status streamed = stream.Exchange(Chunk(session));
  EXPECT_EQ(streamed.error_code(), grpc::NOT_FOUND);
  EXPECT_EQ(streamed.error_message(), unknown.error_message());
  // Its own token goes on where it left off, the scheme spelt any way.
  v1::RegressResponse response;
  auto context = ContextWithDeadline();
  context->AddMetadata("authorization", "bearer " + std::string(kToken));
  const grpc::Status own =
      stub_->RegressChunk(context.get(), Chunk(session), &response);
  ASSERT_TRUE(own.ok()) << own.error_message();
  EXPECT_EQ(response.first_step(), 10u);
}

TEST_F(TokenQuotaTest, EachTokenHasAQuotaOfSessions) {
  service::ServerOptions options;
  options.sessions.max_sessions_per_owner = 2;
  Start(options);
  const std::string first = NewSession(kToken);
  NewSession(kToken);
  const grpc::Status third = RegressChunk(kToken, Chunk());
  EXPECT_EQ(third.error_code(), grpc::RESOURCE_EXHAUSTED);
  EXPECT_THAT(third.error_message(), HasSubstr("--max-sessions-per-token"));
  OpenStream stream(*stub_, kToken);
  EXPECT_EQ(stream.Exchange(Chunk()).error_code(), grpc::RESOURCE_EXHAUSTED);
  // Another token is not held back.
  EXPECT_FALSE(NewSession(kOtherToken).empty());
  // Ending a session frees its place.
  v1::RegressRequest end = Chunk(first);
  end.set_end_session(true);
  ASSERT_TRUE(RegressChunk(kToken, end).ok());
  EXPECT_FALSE(NewSession(kToken).empty());
  EXPECT_EQ(server_->server().sessions().Count().value(), 3);
}

TEST_F(TokenQuotaTest, EachTokenHasAQuotaOfCallsInFlight) {
  service::ServerOptions options;
  options.max_calls_per_token = 2;
  Start(options);
  // Two open streams are two calls in flight, before and after a chunk.
  OpenStream a(*stub_, kToken);
  OpenStream b(*stub_, kToken);
  ASSERT_TRUE(a.Exchange(Chunk()).ok());
  ASSERT_TRUE(b.Exchange(Chunk()).ok());
  const grpc::Status classify = Classify(kToken);
  EXPECT_EQ(classify.error_code(), grpc::RESOURCE_EXHAUSTED);
  EXPECT_THAT(classify.error_message(),
              HasSubstr("quota of 2 calls in flight (--max-calls-per-token"));
  EXPECT_EQ(RegressChunk(kToken, Chunk()).error_code(),
            grpc::RESOURCE_EXHAUSTED);
  OpenStream c(*stub_, kToken);
  EXPECT_EQ(c.Exchange(Chunk()).error_code(), grpc::RESOURCE_EXHAUSTED);
  // The other token is served.
  EXPECT_TRUE(Classify(kOtherToken).ok());
  OpenStream d(*stub_, kOtherToken);
  EXPECT_TRUE(d.Exchange(Chunk()).ok());
  EXPECT_TRUE(d.Close().ok());
  // A closed stream gives its place back by the time its status arrives.
  EXPECT_TRUE(a.Close().ok());
  EXPECT_TRUE(Classify(kToken).ok());
  EXPECT_TRUE(RegressChunk(kToken, Chunk()).ok());
  EXPECT_TRUE(b.Close().ok());
}

TEST_F(TokenQuotaTest, UnaryCallsHoldTheirPlaceUntilAnswered) {
  service::ServerOptions options;
  options.max_calls_per_token = 1;
  // Queued calls wait a second for their batch: time to look at them.
  options.queue.max_queue_delay = absl::Seconds(1);
  Start(options);
  // A RegressChunk in flight: the queue shows it arrived.
  const v1::RegressRequest request = Chunk();
  v1::RegressResponse response;
  auto context = Context(kToken);
  absl::Notification done;
  grpc::Status status;
  stub_->async()->RegressChunk(context.get(), &request, &response,
                               [&](grpc::Status s) {
                                 status = std::move(s);
                                 done.Notify();
                               });
  const std::string queued =
      "rnnserve_queue_depth{method=\"Regress\",model=\"sine_rnn\","
      "version=\"1\"} ";
  const absl::Time until = absl::Now() + absl::Seconds(10);
  auto waiting = [&] {
    const std::string text = server_->metrics().Render();
    const size_t at = text.find(queued);
    return at != std::string::npos && text[at + queued.size()] != '0';
  };
  while (!waiting() && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_TRUE(waiting()) << "the chunk never reached the queue";
  EXPECT_EQ(Classify(kToken).error_code(), grpc::RESOURCE_EXHAUSTED);
  done.WaitForNotification();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(Classify(kToken).ok());
}

TEST_F(TokenQuotaTest, WithoutTokensNoQuotaApplies) {
  service::ServerOptions options;
  options.max_calls_per_token = 1;
  options.sessions.max_sessions_per_owner = 1;
  Start(options, /*with_tokens=*/false);
  OpenStream a(*stub_, "");
  OpenStream b(*stub_, "");
  ASSERT_TRUE(a.Exchange(Chunk()).ok());
  ASSERT_TRUE(b.Exchange(Chunk()).ok());
  EXPECT_TRUE(Classify("").ok());
  EXPECT_TRUE(a.Close().ok());
  EXPECT_TRUE(b.Close().ok());
}

}  // namespace
}  // namespace rnnserve
