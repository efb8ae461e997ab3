// What every unary rnnserve.v1.Inference call shares: authentication before
// the body is read, parsing, the cancel flag, finishing and counting.
//
// The unary methods are marked generic in the service and served through
// gRPC's generic callback API (see UnaryMethods in inference_service.h):
// gRPC's own unary handlers read and parse the request before any handler
// code runs, so an unauthenticated caller could make the server buffer and
// parse a body of up to the message limit. Here the call is refused from
// its metadata alone, and a body is read only for an authenticated caller.
#ifndef RNNSERVE_SERVER_SERVICE_UNARY_CALL_H_
#define RNNSERVE_SERVER_SERVICE_UNARY_CALL_H_

#include <google/protobuf/arena.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/metrics/metrics.h"
#include "server/service/call_limiter.h"
#include "server/service/serving_state.h"
#include "server/service/text_fields.h"

namespace rnnserve::service {

// Bytes of unary request bodies read from the transport by this process so
// far: tests watch it to see that a refused call's body was never read.
// Thread-safe.
int64_t UnaryRequestBytesRead();

// One unary call, from its metadata to its status. Start() authenticates and
// either refuses the call or reads its one request message; the derived
// class then handles it and finishes the call exactly once, through Answer
// or Fail, on any thread. gRPC calls the reactor's methods one at a time
// (OnCancel may run alongside the handling, and only sets a flag). Deletes
// itself when gRPC is done with it; a runtime task that points to the call
// must be completed (it finishes the call) before that can happen.
class UnaryCall : public grpc::ServerGenericBidiReactor {
 public:
  // Refuses the call (UNAUTHENTICATED, counted) when it lacks a valid
  // bearer token, or (RESOURCE_EXHAUSTED) when its token has
  // --max-calls-per-token calls in flight, without reading anything; reads
  // the request otherwise.
  void Start();

  // Whether the client cancelled the call (or gRPC did, at its deadline).
  // Any thread; lock-free.
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  void OnReadDone(bool ok) final;
  void OnCancel() final { cancelled_.store(true, std::memory_order_release); }
  void OnDone() final { delete this; }

 protected:
  // `rpc` names the method in metrics and messages, e.g. "Classify".
  // `state` and `context` outlive the call.
  UnaryCall(const ServingState& state, grpc::CallbackServerContext& context,
            metrics::Method method, const char* rpc);

  // Parses `body` and handles the request. Must finish the call, now or
  // later. `body` is cleared by the parse.
  virtual void Handle(grpc::ByteBuffer& body) = 0;

  // Hands `response` to the transport with status OK; counts the call.
  void Answer(const google::protobuf::MessageLite& response);
  // Finishes with `status`, which is not OK; counts the call.
  void Fail(const absl::Status& status);

  // DEADLINE_EXCEEDED when the call's deadline has passed, CANCELLED when
  // the client has cancelled it, OK while the client still waits.
  absl::Status StillWanted() const;

  // The model's series, once the model is known; until then the call is not
  // counted (there is no model to count it under).
  void set_metrics(metrics::ModelMetrics* metrics) { metrics_ = metrics; }
  // The method the call is counted under, when only its model tells it.

  // Who calls: the digest of the caller's bearer token, or "" without
  // authentication (see CallerId).
  const std::string& caller() const { return caller_; }

  const ServingState& state_;
  grpc::CallbackServerContext& context_;
  const absl::Time start_;
  const absl::Time deadline_;

 private:
  void Count(absl::StatusCode code);

  const metrics::Method method_;
  const char* const rpc_;
  std::string caller_;
  // The call's place in its caller's quota; given back just before the
  // answer, so that a client's next call, sent on it, finds room.
  CallSlot slot_;
  metrics::ModelMetrics* metrics_ = nullptr;
  grpc::ByteBuffer request_body_;
  grpc::ByteBuffer response_body_;
  std::atomic<bool> cancelled_{false};
};

// A unary call whose request and response live on one arena that starts in
// a block inside the call: the common sizes cost one allocation instead of
// one per field, and are freed at once.
template <typename Request, typename Response>
class TypedUnaryCall : public UnaryCall {
 protected:
  TypedUnaryCall(const ServingState& state,
                 grpc::CallbackServerContext& context, metrics::Method method,
                 const char* rpc)
      : UnaryCall(state, context, method, rpc),
        arena_(ArenaOptions(block_)),
        request_(google::protobuf::Arena::CreateMessage<Request>(&arena_)),
        response_(google::protobuf::Arena::CreateMessage<Response>(&arena_)) {}

  // Handles the parsed request; must finish the call, now or later.
  virtual void Run() = 0;

  const Request& request() const { return *request_; }
  Response& response() { return *response_; }

 private:
  // A Fashion-MNIST image (784 floats) and its answer fit in the first block.
  static constexpr size_t kInitialBlock = 8192;

  static google::protobuf::ArenaOptions ArenaOptions(char* block) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = kInitialBlock;
    return options;
  }

  void Handle(grpc::ByteBuffer& body) final {
    // Text fields are checked before the parse, which then cannot fail on
    // them (text_fields.h).
    if (absl::Status status = ParseRequest(body, *request_); !status.ok()) {
      Fail(status);
      return;
    }
    Run();
  }

  alignas(8) char block_[kInitialBlock];  // Before arena_: built first.
  google::protobuf::Arena arena_;
  Request* const request_;
  Response* const response_;
};

// The runtime task of a unary call: hands the call's compute to the runtime
// and its outcome back to the call's Computed(status). The call outlives it:
// it cannot finish before Done.
template <typename Base, typename Call>
class CallTask final : public Base {
 public:
  explicit CallTask(Call* call) : call_(call) {}
  bool cancelled() const override { return call_->cancelled(); }
  void Done(absl::Status status) override {
    call_->Computed(std::move(status));
  }

 private:
  Call* const call_;
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_UNARY_CALL_H_
