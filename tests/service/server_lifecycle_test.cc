// The server as operators meet it: health, reflection, overload, shutdown.
#include <grpcpp/generic/generic_stub.h>

#include <atomic>
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

TEST(ServerLifecycleTest, ShutdownGoesNotServingAndDrainsAdmittedCalls) {
  TestServer server(Models());
  const v1::ClassifyRequest request = FashionRequest(28, 0.25f);
  v1::ClassifyResponse expected;
  {
    auto context = ContextWithDeadline();
    ASSERT_TRUE(
        server.NewStub()->Classify(context.get(), request, &expected).ok());
  }
  // A watcher sees the health change.
  auto health = grpc::health::v1::Health::NewStub(server.NewChannel());
  grpc::ClientContext watch_context;
  grpc::health::v1::HealthCheckRequest watch_request;
  auto watch = health->Watch(&watch_context, watch_request);
  HealthStatus status;
  ASSERT_TRUE(watch->Read(&status));
  EXPECT_EQ(status.status(), HealthStatus::SERVING);

  std::atomic<int> ok{0}, wrong{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> shutting_down{false};
  absl::Mutex mu;
  std::vector<std::string> failures;  // Anything but a refusal.
  int refused = 0;
  absl::Notification some_done;
  std::vector<std::thread> clients;
  for (int c = 0; c < 16; ++c) {
    clients.emplace_back([&] {
      auto stub = server.NewStub();
      while (!stop) {
        v1::ClassifyResponse response;
        auto context = ContextWithDeadline();
        const grpc::Status s =
            stub->Classify(context.get(), request, &response);
        if (s.ok()) {
          if (response.results(0).logits_size() != 10 ||
              !std::equal(response.results(0).logits().begin(),
                          response.results(0).logits().end(),
                          expected.results(0).logits().begin())) {
            ++wrong;
          }
          if (++ok == 50) some_done.Notify();
          continue;
        }
        // gRPC refuses calls that reach a server shutting down, before any
        // handler sees them: UNAVAILABLE for new streams, CANCELLED for
        // calls it had received but not yet handed out.
        absl::MutexLock lock(&mu);
        if (shutting_down && (s.error_code() == grpc::UNAVAILABLE ||
                              s.error_code() == grpc::CANCELLED)) {
          ++refused;
        } else {
          failures.push_back(std::to_string(s.error_code()) + " " +
                             s.error_message());
        }
      }
    });
  }
  ASSERT_TRUE(some_done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  shutting_down = true;
  server.server().Shutdown(absl::Seconds(2));
  stop = true;
  for (std::thread& t : clients) t.join();
  EXPECT_GE(ok, 50);
  EXPECT_EQ(wrong, 0);
  EXPECT_THAT(failures, ::testing::IsEmpty());
  // The refusals above were refusals: no call the service took was cut
  // short (none finished CANCELLED), and every one it answered OK reached
  // its client.
  const std::string text = server.metrics().Render();
  EXPECT_THAT(text, HasSubstr("rnnserve_requests_total{code=\"CANCELLED\","
                              "method=\"Classify\",model=\"fashion_lstm\"} 0"));
  EXPECT_THAT(text, HasSubstr("rnnserve_requests_total{code=\"OK\","
                              "method=\"Classify\",model=\"fashion_lstm\"} " +
                              std::to_string(ok + 1)));
  bool saw_not_serving = false;
  while (watch->Read(&status)) {
    if (status.status() == HealthStatus::NOT_SERVING) saw_not_serving = true;
  }
  EXPECT_TRUE(saw_not_serving);
}

}  // namespace
}  // namespace rnnserve
