// ThreadSanitizer builds only: tells TSan what gRPC promises about the
// order of a call's events, which Debian's uninstrumented libgrpc and
// libgrpc++ keep with atomics and locks TSan cannot see.
//
// 1. What a thread did before it started a batch of operations
//    (grpc_call_start_batch) or asked for a call (grpc_server_request_*call)
//    happened before the completion queue hands the batch's tag to whichever
//    thread takes the event (grpc_completion_queue_next or _pluck). That is
//    the edge between a reactor's StartRead / StartWrite / Finish and its
//    OnReadDone / OnWriteDone, which gRPC 1.51 runs on its "nexting" threads.
// 2. A server reactor's OnDone runs after every other reaction of its call:
//    each reaction ends by decrementing the call's count of outstanding
//    callbacks, and the last one schedules OnDone on gRPC's executor
//    (ServerCallbackCall::ScheduleOnDone). Some of those decrements happen in
//    libgrpc++, where TSan does not see them, so ScheduleOnDone is told to
//    acquire what every decrement released.
//
// Without these, TSan reports every member a reactor sets in one reaction
// and reads in the next, or destroys in OnDone. With them, our code stays
// checked: a race between a reaction and our compute threads has no such
// edge, and is reported.
//
// Defined under gRPC's own names; linked before libgrpc and libgrpc++ (see
// tsan_annotations.cmake), these are what every caller binds to. Each calls
// the real function, found with dlsym(RTLD_NEXT).
#include <dlfcn.h>
#include <grpc/grpc.h>
#include <grpcpp/support/server_callback.h>
#include <sanitizer/tsan_interface.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace {

void* Real(const char* symbol) {
  void* real = dlsym(RTLD_NEXT, symbol);
  if (real == nullptr) {
    std::fprintf(stderr, "grpc_tsan: no definition of %s after ours\n", symbol);
    std::abort();
  }
  return real;
}

template <typename F>
F RealFunction(const char* symbol) {
  return reinterpret_cast<F>(Real(symbol));
}

void AcquireIfComplete(const grpc_event& event) {
  if (event.type == GRPC_OP_COMPLETE) __tsan_acquire(event.tag);
}

// The layout of grpc::internal::ServerCallbackCall in gRPC 1.51
// (grpcpp/support/server_callback.h), whose counter is private.
struct ServerCallbackCallLayout {
  virtual ~ServerCallbackCallLayout() = default;
  std::atomic_int on_cancel_conditions_remaining;
  std::atomic_int callbacks_outstanding;
};
static_assert(sizeof(ServerCallbackCallLayout) ==
                  sizeof(grpc::internal::ServerCallbackCall),
              "grpc::internal::ServerCallbackCall changed: check its members");

}  // namespace

extern "C" {

grpc_call_error grpc_call_start_batch(grpc_call* call, const grpc_op* ops,
                                      size_t nops, void* tag, void* reserved) {
  static const auto real =
      RealFunction<decltype(&grpc_call_start_batch)>("grpc_call_start_batch");
  __tsan_release(tag);
  return real(call, ops, nops, tag, reserved);
}

grpc_call_error grpc_server_request_call(
    grpc_server* server, grpc_call** call, grpc_call_details* details,
    grpc_metadata_array* request_metadata,
    grpc_completion_queue* cq_bound_to_call,
    grpc_completion_queue* cq_for_notification, void* tag_new) {
  static const auto real = RealFunction<decltype(&grpc_server_request_call)>(
      "grpc_server_request_call");
  __tsan_release(tag_new);
  return real(server, call, details, request_metadata, cq_bound_to_call,
              cq_for_notification, tag_new);
}

grpc_call_error grpc_server_request_registered_call(
    grpc_server* server, void* registered_method, grpc_call** call,
    gpr_timespec* deadline, grpc_metadata_array* request_metadata,
    grpc_byte_buffer** optional_payload,
    grpc_completion_queue* cq_bound_to_call,
    grpc_completion_queue* cq_for_notification, void* tag_new) {
  static const auto real =
      RealFunction<decltype(&grpc_server_request_registered_call)>(
          "grpc_server_request_registered_call");
  __tsan_release(tag_new);
  return real(server, registered_method, call, deadline, request_metadata,
              optional_payload, cq_bound_to_call, cq_for_notification, tag_new);
}

grpc_event grpc_completion_queue_next(grpc_completion_queue* cq,
                                      gpr_timespec deadline, void* reserved) {
  static const auto real = RealFunction<decltype(&grpc_completion_queue_next)>(
      "grpc_completion_queue_next");
  const grpc_event event = real(cq, deadline, reserved);
  AcquireIfComplete(event);
  return event;
}

grpc_event grpc_completion_queue_pluck(grpc_completion_queue* cq, void* tag,
                                       gpr_timespec deadline, void* reserved) {
  static const auto real = RealFunction<decltype(&grpc_completion_queue_pluck)>(
      "grpc_completion_queue_pluck");
  const grpc_event event = real(cq, tag, deadline, reserved);
  AcquireIfComplete(event);
  return event;
}

}  // extern "C"

// grpc::internal::ServerCallbackCall::ScheduleOnDone(bool), called by the
// reaction that brought the outstanding callbacks to zero.
extern "C" __attribute__((visibility("default"))) void
ScheduleOnDone(grpc::internal::ServerCallbackCall* call, bool inline_ondone) __asm__(
    "_ZN4grpc8internal18ServerCallbackCall14ScheduleOnDoneEb");
extern "C" void ScheduleOnDone(grpc::internal::ServerCallbackCall* call,
                               bool inline_ondone) {
  static const auto real =
      RealFunction<void (*)(grpc::internal::ServerCallbackCall*, bool)>(
          "_ZN4grpc8internal18ServerCallbackCall14ScheduleOnDoneEb");
  __tsan_acquire(&reinterpret_cast<ServerCallbackCallLayout*>(call)
                      ->callbacks_outstanding);
  real(call, inline_ondone);
}

namespace {

// Fails at start-up, naming the cause, when libgrpc is loaded ahead of this
// library: then the edges above would be missing for gRPC's own calls.
__attribute__((constructor)) void CheckInterposition() {
  void* bound = dlsym(RTLD_DEFAULT, "grpc_call_start_batch");
  Dl_info bound_to = {}, self = {};
  dladdr(bound, &bound_to);
  dladdr(reinterpret_cast<void*>(&CheckInterposition), &self);
  if (bound_to.dli_fbase != self.dli_fbase) {
    std::fprintf(stderr,
                 "grpc_tsan: grpc_call_start_batch binds to %s, not to %s: "
                 "link it before libgrpc\n",
                 bound_to.dli_fname != nullptr ? bound_to.dli_fname : "nothing",
                 self.dli_fname);
    std::abort();
  }
}

}  // namespace
