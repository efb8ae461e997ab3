// The server as operators meet it: health, reflection, overload, shutdown.
#include <grpcpp/generic/generic_stub.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace rnnserve {
namespace {

using testing::ContextWithDeadline;
using ::testing::HasSubstr;
using testing::TestServer;
using HealthStatus = grpc::health::v1::HealthCheckResponse;

std::vector<model::Model> Models() {
  return testing::LoadModels({"models/fashion_lstm", "models/sine_rnn"});
}

v1::ClassifyRequest FashionRequest(int steps, float value) {
  v1::ClassifyRequest request;
  request.set_model("fashion_lstm");
  v1::Sequence* s = request.add_sequences();
  s->set_steps(steps);
  s->mutable_values()->Resize(steps * 28, value);
  return request;
}

HealthStatus::ServingStatus Check(grpc::health::v1::Health::Stub& stub,
                                  const std::string& service,
                                  grpc::StatusCode* code) {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  HealthStatus response;
  auto context = ContextWithDeadline();
  *code = stub.Check(context.get(), request, &response).error_code();
  return response.status();
}

TEST(ServerLifecycleTest, HealthIsServingOverallAndPerModel) {
  TestServer server(Models());
  auto health = grpc::health::v1::Health::NewStub(server.NewChannel());
  grpc::StatusCode code;
  for (const char* service :
       {"", "rnnserve.v1.Inference", "fashion_lstm", "sine_rnn"}) {
    EXPECT_EQ(Check(*health, service, &code), HealthStatus::SERVING) << service;
    EXPECT_EQ(code, grpc::OK);
  }
  Check(*health, "no_such_model", &code);
  EXPECT_EQ(code, grpc::NOT_FOUND);
}

TEST(ServerLifecycleTest, ReflectionListsTheServices) {
  TestServer server(Models());
  grpc::GenericStub stub(server.NewChannel());
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  auto call = stub.PrepareCall(
      &context,
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  auto wait = [&](intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), want);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(wait(1));
  // ServerReflectionRequest{list_services: ""}: field 7, length 0.
  const char request_bytes[] = {0x3a, 0x00};
  grpc::Slice slice(request_bytes, sizeof(request_bytes));
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(wait(2));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(wait(3));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  EXPECT_THAT(bytes, HasSubstr("rnnserve.v1.Inference"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  call->WritesDone(reinterpret_cast<void*>(4));
  wait(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  wait(5);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST(ServerLifecycleTest, AFullQueueRefusesAtOnceAndTheServerRecovers) {
  service::ServerOptions options;
  options.compute_threads = 1;
  options.queue.max_batch_size = 16;  // See BusyComputeThread.
  options.queue.max_batch_size = 1;
  options.queue.max_queued_items = 2;
  TestServer server(Models(), options);
  // Long sequences keep the single compute thread busy.
  const v1::ClassifyRequest request = FashionRequest(2000, 0.3f);
  std::atomic<int> ok{0}, exhausted{0}, other{0};
  // Offered load far above what one compute thread takes; each client goes
  // on until both outcomes were seen (or a bound, on a very slow machine).
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  std::vector<std::thread> clients;
  for (int c = 0; c < 32; ++c) {
    clients.emplace_back([&] {
      auto stub = server.NewStub();
      while ((ok == 0 || exhausted == 0) && absl::Now() < give_up) {
        v1::ClassifyResponse response;
        auto context = ContextWithDeadline(60);
        const grpc::Status s =
            stub->Classify(context.get(), request, &response);
        if (s.ok()) {
          ++ok;
        } else if (s.error_code() == grpc::RESOURCE_EXHAUSTED) {
          EXPECT_THAT(s.error_message(), HasSubstr("full"));
          ++exhausted;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  EXPECT_GT(ok, 0);
  EXPECT_GT(exhausted, 0);
  EXPECT_EQ(other, 0);
  // Once the load is gone, calls succeed again.
  v1::ClassifyResponse response;
  auto context = ContextWithDeadline();
  EXPECT_TRUE(server.NewStub()
                  ->Classify(context.get(), FashionRequest(28, 0.3f), &response)
                  .ok());
}

// Under load: MarkNotServing turns health NOT_SERVING at once while calls
// are still served (the drain delay); Shutdown then refuses new calls with
// UNAVAILABLE and lets the admitted ones finish. No call is CANCELLED: each
// client, like one behind a load balancer, goes elsewhere once refused.
TEST(ServerLifecycleTest, DrainServesThenRefusesWithUnavailableNeverCancels) {
  TestServer server(Models());
  const v1::ClassifyRequest request = FashionRequest(28, 0.25f);
  v1::ClassifyResponse expected;
  {
    auto context = ContextWithDeadline();
    ASSERT_TRUE(
        server.NewStub()->Classify(context.get(), request, &expected).ok());
  }
  auto health = grpc::health::v1::Health::NewStub(server.NewChannel());
  grpc::ClientContext watch_context;
  grpc::health::v1::HealthCheckRequest watch_request;
  auto watch = health->Watch(&watch_context, watch_request);
  HealthStatus status;
  ASSERT_TRUE(watch->Read(&status));
  EXPECT_EQ(status.status(), HealthStatus::SERVING);

  std::atomic<int> ok{0}, ok_while_draining{0}, wrong{0};
  std::atomic<bool> draining{false}, shutting_down{false};
  absl::Mutex mu;
  std::vector<std::string> failures;  // Anything but a refusal.
  int refused = 0, refused_with_message = 0;
  absl::Notification some_done, some_done_while_draining;
  std::vector<std::thread> clients;
  for (int c = 0; c < 32; ++c) {
    clients.emplace_back([&] {
      auto stub = server.NewStub();
      for (;;) {
        v1::ClassifyResponse response;
        auto context = ContextWithDeadline();
        const grpc::Status s =
            stub->Classify(context.get(), request, &response);
        if (s.ok()) {
          // Batching may change the last bits only.
          if (response.results(0).logits_size() != 10 ||
              !std::equal(
                  response.results(0).logits().begin(),
                  response.results(0).logits().end(),
                  expected.results(0).logits().begin(),
                  [](float a, float b) { return std::abs(a - b) <= 1e-5f; })) {
            ++wrong;
          }
          if (++ok == 50) some_done.Notify();
          if (draining && ++ok_while_draining == 50) {
            some_done_while_draining.Notify();
          }
          continue;
        }
        absl::MutexLock lock(&mu);
        if (shutting_down && s.error_code() == grpc::UNAVAILABLE) {
          ++refused;
          if (s.error_message() == "server is shutting down") {
            ++refused_with_message;
          }
        } else {
          failures.push_back(std::to_string(s.error_code()) + " " +
                             s.error_message());
        }
        return;  // Refused: this client goes to another server.
      }
    });
  }
  ASSERT_TRUE(some_done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  server.server().MarkNotServing();
  draining = true;
  // At once, overall and per model.
  for (const char* service :
       {"", "rnnserve.v1.Inference", "fashion_lstm", "sine_rnn"}) {
    grpc::StatusCode code;
    EXPECT_EQ(Check(*health, service, &code), HealthStatus::NOT_SERVING)
        << service;
    EXPECT_EQ(code, grpc::OK);
  }
  ASSERT_TRUE(watch->Read(&status));
  EXPECT_EQ(status.status(), HealthStatus::NOT_SERVING);
  // A health watch stays open until the grace ends; this one is done.
  watch_context.TryCancel();
  // Calls are still served while load balancers take the server out.
  ASSERT_TRUE(some_done_while_draining.WaitForNotificationWithTimeout(
      absl::Seconds(60)));
  shutting_down = true;
  server.server().Shutdown(absl::Seconds(10));
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_THAT(failures, ::testing::IsEmpty());
  EXPECT_EQ(refused, 32);
  EXPECT_GT(refused_with_message, 0);
  // No call the service took was cut short, and every one it answered OK
  // reached its client.
  const std::string text = server.metrics().Render();
  EXPECT_THAT(text, HasSubstr("rnnserve_requests_total{code=\"CANCELLED\","
                              "method=\"Classify\",model=\"fashion_lstm\","
                              "version=\"1\"} 0"));
  EXPECT_THAT(text, HasSubstr("rnnserve_requests_total{code=\"OK\","
                              "method=\"Classify\",model=\"fashion_lstm\","
                              "version=\"1\"} " +
                              std::to_string(ok + 1)));
}

using Stream =
    grpc::ClientReaderWriter<v1::RegressRequest, v1::RegressResponse>;

v1::RegressRequest SineChunk(int steps, const std::string& token = "") {
  v1::RegressRequest r;
  r.set_model("sine_rnn");
  r.set_session_token(token);
  r.set_steps(steps);
  r.mutable_values()->Resize(steps, 0.5f);
  return r;
}

// The value of the series `name{labels}` in the server's metrics, or -1.
double Series(TestServer& server, const std::string& series) {
  const std::string text = server.metrics().Render();
  const size_t at = text.find(series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 1));
}

// Waits (bounded) until a queue of the server holds an item: a call that
// is admitted and waiting for the busy compute thread.
bool WaitUntilQueued(TestServer& server, const std::string& method,
                     const std::string& model) {
  const std::string series = "rnnserve_queue_depth{method=\"" + method +
                             "\",model=\"" + model + "\",version=\"1\"}";
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (absl::Now() < give_up) {
    if (Series(server, series) >= 1) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return false;
}

// Keeps a server's single compute thread busy with two long Classify calls,
// answered OK in the end (unless refused as the server shuts down, see
// Call): whichever runs first, the other waits in the queue meanwhile, so the
// queue holds an item for at least one call's time (with batches of at most
// 16 sequences, each call its own batch).
class BusyComputeThread {
 public:
  explicit BusyComputeThread(TestServer& server) : stub_(server.NewStub()) {
    for (int c = 0; c < 2; ++c) calls_.emplace_back([this] { Call(); });
    started_ = WaitUntilQueued(server, "Classify", "fashion_lstm");
  }
  ~BusyComputeThread() {
    for (std::thread& t : calls_) t.join();
  }
  bool started() const { return started_; }

 private:
  void Call() {
    v1::ClassifyRequest request;
    request.set_model("fashion_lstm");
    for (int i = 0; i < 16; ++i) {
      v1::Sequence* s = request.add_sequences();
      s->set_steps(2000);
      s->mutable_values()->Resize(2000 * 28, 0.3f);
    }
    v1::ClassifyResponse response;
    auto context = ContextWithDeadline(120);
    const grpc::Status status =
        stub_->Classify(context.get(), request, &response);
    // The queue depth polled may have been the first call's before it ran,
    // with the second not yet arrived when the server stopped taking calls.
    if (status.error_code() == grpc::UNAVAILABLE &&
        status.error_message() == "server is shutting down") {
      return;
    }
    EXPECT_TRUE(status.ok())
        << status.error_code() << " " << status.error_message();
  }

  std::unique_ptr<v1::Inference::Stub> stub_;
  std::vector<std::thread> calls_;
  bool started_ = false;
};

// Shutdown ends open Regress streams with UNAVAILABLE telling the client to
// resume: an idle one at once, one with a chunk in flight only after that
// chunk is answered; the sessions stay resumable, at the step the client
// was last answered.
TEST(ServerLifecycleTest, ShutdownEndsOpenStreamsSoThatTheyCanResume) {
  service::ServerOptions options;
  options.compute_threads = 1;
  options.queue.max_batch_size = 16;  // See BusyComputeThread.
  TestServer server(Models(), options);
  auto stub = server.NewStub();
  auto idle_context = ContextWithDeadline(60);
  auto busy_context = ContextWithDeadline(60);
  std::unique_ptr<Stream> idle = stub->Regress(idle_context.get());
  std::unique_ptr<Stream> busy = stub->Regress(busy_context.get());
  v1::RegressResponse response;
  ASSERT_TRUE(idle->Write(SineChunk(10)));
  ASSERT_TRUE(idle->Read(&response));
  const std::string idle_token = response.session_token();
  ASSERT_TRUE(busy->Write(SineChunk(10)));
  ASSERT_TRUE(busy->Read(&response));
  const std::string busy_token = response.session_token();

  // The compute thread is busy; the busy stream's next chunk waits for it.
  BusyComputeThread busy_compute(server);
  ASSERT_TRUE(busy_compute.started());
  ASSERT_TRUE(busy->Write(SineChunk(10)));
  ASSERT_TRUE(WaitUntilQueued(server, "Regress", "sine_rnn"));

  std::thread shutdown([&] { server.server().Shutdown(absl::Seconds(60)); });
  // The idle stream ends without an answer.
  EXPECT_FALSE(idle->Read(&response));
  grpc::Status idle_status = idle->Finish();
  EXPECT_EQ(idle_status.error_code(), grpc::UNAVAILABLE);
  EXPECT_EQ(idle_status.error_message(),
            "server draining; resume with your session token");
  // The busy one first gets the answer of its chunk in flight.
  ASSERT_TRUE(busy->Read(&response));
  EXPECT_EQ(response.first_step(), 10);
  EXPECT_EQ(response.outputs_size(), 10);
  EXPECT_FALSE(busy->Read(&response));
  grpc::Status busy_status = busy->Finish();
  EXPECT_EQ(busy_status.error_code(), grpc::UNAVAILABLE);
  EXPECT_EQ(busy_status.error_message(),
            "server draining; resume with your session token");
  shutdown.join();

  // Both sessions are kept, at the step their client was answered.
  for (const auto& [token, next_step] :
       {std::pair(idle_token, 10), std::pair(busy_token, 20)}) {
    auto session = server.server().sessions().TakeOver(token, "sine_rnn", "");
    ASSERT_TRUE(session.ok()) << session.status();
    EXPECT_EQ(session->record.next_step, next_step);
  }
}

// A stream opened after Shutdown began is refused like any call.
TEST(ServerLifecycleTest, AStreamOpenedWhileShuttingDownIsRefused) {
  service::ServerOptions options;
  options.compute_threads = 1;
  options.queue.max_batch_size = 16;  // See BusyComputeThread.
  TestServer server(Models(), options);
  auto stub = server.NewStub();
  // Calls in flight, so that gRPC keeps running while Shutdown waits.
  BusyComputeThread busy_compute(server);
  ASSERT_TRUE(busy_compute.started());
  std::thread shutdown([&] { server.server().Shutdown(absl::Seconds(60)); });
  // Shutdown is under way once health says so; gRPC itself still runs,
  // waiting for the quiet period and the calls in flight.
  auto health = grpc::health::v1::Health::NewStub(server.NewChannel());
  grpc::StatusCode code;
  while (Check(*health, "", &code) != HealthStatus::NOT_SERVING) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  auto context = ContextWithDeadline();
  std::unique_ptr<Stream> stream = stub->Regress(context.get());
  stream->Write(SineChunk(10));
  v1::RegressResponse response;
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "server is shutting down");
  shutdown.join();
}

// Two threads call Shutdown at once: each returns only once the server has
// stopped, i.e. once the calls in flight were answered.
TEST(ServerLifecycleTest, ShutdownFromTwoThreadsReturnsWhenAllIsStopped) {
  service::ServerOptions options;
  options.compute_threads = 1;
  options.queue.max_batch_size = 16;  // See BusyComputeThread.
  TestServer server(Models(), options);
  BusyComputeThread busy_compute(server);
  ASSERT_TRUE(busy_compute.started());
  const std::string answered =
      "rnnserve_requests_total{code=\"OK\",method=\"Classify\","
      "model=\"fashion_lstm\",version=\"1\"}";
  // What each caller saw answered when its Shutdown returned.
  std::vector<double> seen(2, -1);
  std::vector<std::thread> callers;
  for (int i = 0; i < 2; ++i) {
    callers.emplace_back([&, i] {
      server.server().Shutdown(absl::Seconds(60));
      seen[i] = Series(server, answered);
    });
  }
  for (std::thread& t : callers) t.join();
  const double finally = Series(server, answered);
  EXPECT_GE(finally, 1);  // At least the call that was computing.
  EXPECT_EQ(seen[0], finally);
  EXPECT_EQ(seen[1], finally);
  // And once more, after all is stopped.
  server.server().Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace rnnserve
