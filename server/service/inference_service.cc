#include "server/service/inference_service.h"

#include <algorithm>
#include <memory>
#include <numeric>
#include <utility>
#include <vector>

#include "server/common/status_macros.h"
#include "server/service/authenticate.h"
#include "server/service/call_util.h"
#include "server/service/chunk.h"
#include "server/service/model_info.h"
#include "server/service/regress_stream.h"
#include "server/service/status.h"
#include "server/service/validation.h"

namespace rnnserve::service {
namespace {

using metrics::Method;

// Finishes a unary call and counts it.
void FinishUnary(grpc::ServerUnaryReactor* reactor,
                 metrics::ModelMetrics* metrics, Method method,
                 absl::Time start, const Clock& clock,
                 const absl::Status& status) {
  if (metrics != nullptr) {
    metrics->RequestDone(method, status.code(), clock.Now() - start);
  }
  reactor->Finish(ToGrpcStatus(status));
}

// A Classify call waiting for, then receiving, its batch.
class ClassifyCall final : public runtime::ClassifyTask {
 public:
  ClassifyCall(grpc::CallbackServerContext* context,
               const v1::ClassifyRequest& request,
               v1::ClassifyResponse* response,
               grpc::ServerUnaryReactor* reactor,
               const model::ModelConfig& config, metrics::ModelMetrics* metrics,
               const Clock& clock, absl::Time start)
      : context_(context),
        request_(request),
        response_(response),
        reactor_(reactor),
        config_(config),
        metrics_(metrics),
        clock_(clock),
        start_(start) {
    const size_t n = request.sequences_size();
    const size_t outputs = config.output_size;
    logits_.resize(n * outputs);
    probabilities_.resize(n * outputs);
    for (size_t i = 0; i < n; ++i) {
      const v1::Sequence& s = request.sequences(i);
      items.push_back(
          {static_cast<int>(s.steps()),
           {s.values().data(), static_cast<size_t>(s.values_size())},
           {logits_.data() + i * outputs, outputs},
           {probabilities_.data() + i * outputs, outputs}});
    }
    deadline = Deadline(*context);
  }

  bool cancelled() const override { return context_->IsCancelled(); }

  void Done(absl::Status status) override {
    if (status.ok()) Respond();
    FinishUnary(reactor_, metrics_, Method::kClassify, start_, clock_, status);
  }

 private:
  void Respond() {
    response_->set_model(config_.name);
    response_->set_model_version(config_.version);
    const int outputs = config_.output_size;
    const int k = std::clamp<int>(request_.top_k(), 1, outputs);
    std::vector<int> order(outputs);
    for (size_t i = 0; i < items.size(); ++i) {
      const float* logits = logits_.data() + i * outputs;
      const float* probs = probabilities_.data() + i * outputs;
      v1::Classification* result = response_->add_results();
      result->mutable_logits()->Add(logits, logits + outputs);
      result->mutable_probabilities()->Add(probs, probs + outputs);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(
          order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
            return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
          });
      for (int j = 0; j < k; ++j) {
        v1::ClassScore* score = result->add_top();
        score->set_index(order[j]);
        if (!config_.labels.empty()) score->set_label(config_.labels[order[j]]);
        score->set_probability(probs[order[j]]);
      }
    }
  }

  grpc::CallbackServerContext* const context_;
  const v1::ClassifyRequest& request_;
  v1::ClassifyResponse* const response_;
  grpc::ServerUnaryReactor* const reactor_;
  const model::ModelConfig& config_;
  metrics::ModelMetrics* const metrics_;
  const Clock& clock_;
  const absl::Time start_;
  std::vector<float> logits_;
  std::vector<float> probabilities_;
};

// A RegressChunk call: holds its session for the whole call.
class ChunkCall final : public runtime::RegressTask {
 public:
  ChunkCall(grpc::CallbackServerContext* context,
            const v1::RegressRequest& request, v1::RegressResponse* response,
            grpc::ServerUnaryReactor* reactor, const model::ModelConfig& config,
            metrics::ModelMetrics* metrics, const Clock& clock,
            absl::Time start, sessions::Lease lease)
      : context_(context),
        response_(response),
        reactor_(reactor),
        config_(config),
        metrics_(metrics),
        clock_(clock),
        start_(start),
        lease_(std::move(lease)),
        chunk_(request, *lease_, config, *response) {
    deadline = Deadline(*context);
    if (chunk_.steps() > 0) item = chunk_.Item(request, *lease_, *response);
  }

  bool has_steps() const { return chunk_.steps() > 0; }
  bool cancelled() const override { return context_->IsCancelled(); }

  void Done(absl::Status status) override {
    if (status.ok()) {
      chunk_.Describe(*lease_, config_, /*with_token=*/true, *response_);
      chunk_.Commit(lease_);
    }
    // Detach before answering, so that a client's next call finds the
    // session free.
    lease_.Release();
    FinishUnary(reactor_, metrics_, Method::kRegressChunk, start_, clock_,
                status);
  }

 private:
  grpc::CallbackServerContext* const context_;
  v1::RegressResponse* const response_;
  grpc::ServerUnaryReactor* const reactor_;
  const model::ModelConfig& config_;
  metrics::ModelMetrics* const metrics_;
  const Clock& clock_;
  const absl::Time start_;
  sessions::Lease lease_;
  PendingChunk chunk_;
};

// Finishes a unary call that comes while the server shuts down or that
// lacks a valid bearer token; false when the call may go on. Runs before the
// handler looks at the request, so that an unauthenticated caller learns
// nothing, not even which models exist.
bool Refused(const ServingState& state, grpc::CallbackServerContext& context,
             const char* rpc, grpc::ServerUnaryReactor* reactor) {
  // A server shutting down refuses with UNAVAILABLE, which clients retry.
  if (absl::Status status = state.admission->Admit(); !status.ok()) {
    reactor->Finish(ToGrpcStatus(status));
    return true;
  }
  absl::Status status = Authenticate(context, state.bearer_tokens);
  if (status.ok()) return false;
  if (state.metrics != nullptr) state.metrics->AuthRefused(rpc);
  reactor->Finish(ToGrpcStatus(status));
  return true;
}

// A Regress stream refused before its first read.
class RefusedStream final
    : public grpc::ServerBidiReactor<v1::RegressRequest, v1::RegressResponse> {
 public:
  explicit RefusedStream(const absl::Status& status) {
    Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerUnaryReactor* InferenceService::Classify(
    grpc::CallbackServerContext* context, const v1::ClassifyRequest* request,
    v1::ClassifyResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (Refused(state_, *context, "Classify", reactor)) return reactor;
  const absl::Time start = state_.clock->Now();
  absl::StatusOr<runtime::ModelRuntime*> model =
      state_.FindModel(request->model());
  if (!model.ok()) {
    reactor->Finish(ToGrpcStatus(model.status()));
    return reactor;
  }
  metrics::ModelMetrics* metrics = state_.MetricsFor(request->model());
  const model::ModelConfig& config = (*model)->config();
  absl::Status status = CheckTask(config, model::Task::kClassification);
  if (status.ok()) status = ValidateClassify(*request, config, state_.limits);
  if (status.ok()) {
    std::unique_ptr<runtime::ClassifyTask> call =
        std::make_unique<ClassifyCall>(context, *request, response, reactor,
                                       config, metrics, *state_.clock, start);
    status = (*model)->Classify(call);
  }
  // Accepted calls are finished by their task.
  if (!status.ok()) {
    FinishUnary(reactor, metrics, Method::kClassify, start, *state_.clock,
                status);
  }
  return reactor;
}

grpc::ServerBidiReactor<v1::RegressRequest, v1::RegressResponse>*
InferenceService::Regress(grpc::CallbackServerContext* context) {
  if (absl::Status status = Authenticate(*context, state_.bearer_tokens);
      !status.ok()) {
    if (state_.metrics != nullptr) state_.metrics->AuthRefused("Regress");
    return new RefusedStream(status);
  }
  return new RegressStream(state_, context);
}

grpc::ServerUnaryReactor* InferenceService::RegressChunk(
    grpc::CallbackServerContext* context, const v1::RegressRequest* request,
    v1::RegressResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (Refused(state_, *context, "RegressChunk", reactor)) return reactor;
  const absl::Time start = state_.clock->Now();
  absl::StatusOr<runtime::ModelRuntime*> model =
      state_.FindModel(request->model());
  if (!model.ok()) {
    reactor->Finish(ToGrpcStatus(model.status()));
    return reactor;
  }
  metrics::ModelMetrics* metrics = state_.MetricsFor(request->model());
  const model::ModelConfig& config = (*model)->config();
  auto run = [&]() -> absl::Status {
    RETURN_IF_ERROR(CheckTask(config, model::Task::kRegression));
    RETURN_IF_ERROR(ValidateChunk(*request, config, state_.limits));
    absl::StatusOr<sessions::Lease> lease =
        request->session_token().empty()
            ? state_.sessions->Create(config.name, config.state_size())
            : state_.sessions->Resume(request->session_token(), config.name);
    RETURN_IF_ERROR(lease.status());
    auto chunk = std::make_unique<ChunkCall>(
        context, *request, response, reactor, config, metrics, *state_.clock,
        start, std::move(*lease));
    if (!chunk->has_steps()) {
      chunk->Done(absl::OkStatus());
      return absl::OkStatus();
    }
    std::unique_ptr<runtime::RegressTask> task = std::move(chunk);
    return (*model)->Regress(task);
  };
  if (absl::Status status = run(); !status.ok()) {
    FinishUnary(reactor, metrics, Method::kRegressChunk, start, *state_.clock,
                status);
  }
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::ListModels(
    grpc::CallbackServerContext* context,
    const v1::ListModelsRequest* /*request*/,
    v1::ListModelsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (Refused(state_, *context, "ListModels", reactor)) return reactor;
  for (const auto& [name, model] : state_.models) {
    FillModelInfo(*model, state_.limits, *response->add_models());
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* InferenceService::GetModel(
    grpc::CallbackServerContext* context, const v1::GetModelRequest* request,
    v1::ModelInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (Refused(state_, *context, "GetModel", reactor)) return reactor;
  absl::StatusOr<runtime::ModelRuntime*> model =
      state_.FindModel(request->model());
  if (model.ok()) FillModelInfo(**model, state_.limits, *response);
  reactor->Finish(ToGrpcStatus(model.status()));
  return reactor;
}

}  // namespace rnnserve::service
