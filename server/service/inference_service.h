// rnnserve.v1.Inference on gRPC's callback API.
#ifndef RNNSERVE_SERVER_SERVICE_INFERENCE_SERVICE_H_
#define RNNSERVE_SERVER_SERVICE_INFERENCE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "rnnserve/v1/inference.grpc.pb.h"
#include "server/service/arena_allocator.h"
#include "server/service/serving_state.h"

namespace rnnserve::service {

// Turns calls into runtime tasks; never blocks a gRPC thread: the compute
// threads finish the calls. Every method first checks the caller's bearer
// token when the state has tokens. Thread-safe.
class InferenceService final : public v1::Inference::CallbackService {
 public:
  // `state` must outlive the service.
  explicit InferenceService(const ServingState& state) : state_(state) {
    SetMessageAllocatorFor_Classify(&classify_allocator_);
    SetMessageAllocatorFor_RegressChunk(&chunk_allocator_);
  }

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const v1::ClassifyRequest* request,
                                     v1::ClassifyResponse* response) override;

  grpc::ServerBidiReactor<v1::RegressRequest, v1::RegressResponse>* Regress(
      grpc::CallbackServerContext* context) override;

  grpc::ServerUnaryReactor* RegressChunk(
      grpc::CallbackServerContext* context, const v1::RegressRequest* request,
      v1::RegressResponse* response) override;

  grpc::ServerUnaryReactor* ListModels(
      grpc::CallbackServerContext* context,
      const v1::ListModelsRequest* request,
      v1::ListModelsResponse* response) override;

  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context,
                                     const v1::GetModelRequest* request,
                                     v1::ModelInfo* response) override;

 private:
  const ServingState& state_;
  ArenaMessageAllocator<v1::ClassifyRequest, v1::ClassifyResponse>
      classify_allocator_;
  ArenaMessageAllocator<v1::RegressRequest, v1::RegressResponse>
      chunk_allocator_;
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_INFERENCE_SERVICE_H_
