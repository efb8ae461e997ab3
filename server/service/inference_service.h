// rnnserve.v1.Inference on gRPC's callback API.
#ifndef RNNSERVE_SERVER_SERVICE_INFERENCE_SERVICE_H_
#define RNNSERVE_SERVER_SERVICE_INFERENCE_SERVICE_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include "rnnserve/v1/inference.grpc.pb.h"
#include "server/service/serving_state.h"

namespace rnnserve::service {

// The unary methods (Classify, RegressChunk, ListModels, GetModel), served
// as generic calls so that each is authenticated before its body is read
// (see unary_call.h); any other method is UNIMPLEMENTED. Register it with
// the server next to InferenceService. Thread-safe.
class UnaryMethods final : public grpc::CallbackGenericService {
 public:
  // `state` must outlive the service.
  explicit UnaryMethods(const ServingState& state) : state_(state) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override;

 private:
  const ServingState& state_;
};

// The registered part of the service: the Regress stream, raw so that its
// messages are parsed by the stream itself (regress_stream.h), read one at
// a time once the stream is authenticated. The unary methods are marked
// generic here, which leaves them to unary_methods(); Regress keeps the
// service registered under its name, for health and reflection.
using InferenceServiceBase = v1::Inference::WithGenericMethod_Classify<
    v1::Inference::WithGenericMethod_RegressChunk<
        v1::Inference::WithGenericMethod_ListModels<
            v1::Inference::WithGenericMethod_GetModel<
                v1::Inference::WithRawCallbackMethod_Regress<
                    v1::Inference::Service>>>>>;

// Turns calls into runtime tasks; never blocks a gRPC thread: the compute
// threads finish the calls. Every method first checks the caller's bearer
// token when the state has tokens. Register both this service and
// unary_methods() with one server. Thread-safe.
class InferenceService final : public InferenceServiceBase {
 public:
  // `state` must outlive the service.
  explicit InferenceService(const ServingState& state)
      : state_(state), unary_methods_(state) {}

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Regress(
      grpc::CallbackServerContext* context) override;

  grpc::CallbackGenericService* unary_methods() { return &unary_methods_; }

 private:
  const ServingState& state_;
  UnaryMethods unary_methods_;
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_INFERENCE_SERVICE_H_
