#include "server/service/inference_service.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "server/common/status_macros.h"
#include "server/service/authenticate.h"
#include "server/service/chunk.h"
#include "server/service/model_info.h"
#include "server/service/oip_service.h"
#include "server/service/regress_stream.h"
#include "server/service/status.h"
#include "server/service/unary_call.h"
#include "server/service/validation.h"

namespace rnnserve::service {
namespace {

using metrics::Method;

// A Classify call waiting for, then receiving, its batch.
class ClassifyCall final
    : public TypedUnaryCall<v1::ClassifyRequest, v1::ClassifyResponse> {
 public:
  ClassifyCall(const ServingState& state, grpc::CallbackServerContext& context)
      : TypedUnaryCall(state, context, Method::kClassify, "Classify") {}

  void Computed(absl::Status status) {
    if (!status.ok()) {
      Fail(status);
      return;
    }
    Respond();
    Answer(response());
  }

 private:
  void Run() override {
    if (absl::Status status = Accept(); !status.ok()) Fail(status);
    // Accepted calls are finished by their task.
  }

  absl::Status Accept() {
    ASSIGN_OR_RETURN(
        model_, state_.FindModel(request().model(), request().model_version()));
    set_metrics(state_.MetricsFor(*model_));
    config_ = &model_->config();
    RETURN_IF_ERROR(CheckTask(*config_, model::Task::kClassification));
    RETURN_IF_ERROR(ValidateClassify(request(), *config_, state_.limits));
    auto task =
        std::make_unique<CallTask<runtime::ClassifyTask, ClassifyCall>>(this);
    const size_t n = request().sequences_size();
    const size_t outputs = config_->output_size;
    task->items.reserve(n);
    logits_.resize(n * outputs);
    probabilities_.resize(n * outputs);
    for (size_t i = 0; i < n; ++i) {
      const v1::Sequence& s = request().sequences(i);
      task->items.push_back(
          {static_cast<int>(s.steps()),
           {s.values().data(), static_cast<size_t>(s.values_size())},
           {logits_.data() + i * outputs, outputs},
           {probabilities_.data() + i * outputs, outputs}});
      task->items.back().tokens = {s.token_ids().data(),
                                   static_cast<size_t>(s.token_ids_size())};
    }
    task->deadline = deadline_;
    std::unique_ptr<runtime::ClassifyTask> base = std::move(task);
    return model_->Classify(base);
  }

  void Respond() {
    v1::ClassifyResponse& response = this->response();
    response.set_model(config_->name);
    response.set_model_version(config_->version);
    const int outputs = config_->output_size;
    // top_k is a uint32: clamp it as one, so that 2^31 and above mean all.
    const int k = static_cast<int>(std::clamp<uint32_t>(
        request().top_k(), 1, static_cast<uint32_t>(outputs)));
    absl::InlinedVector<int, 32> order(outputs);
    for (int i = 0; i < request().sequences_size(); ++i) {
      const float* logits = logits_.data() + i * outputs;
      const float* probs = probabilities_.data() + i * outputs;
      v1::Classification* result = response.add_results();
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
        if (!config_->labels.empty()) {
          score->set_label(config_->labels[order[j]]);
        }
        score->set_probability(probs[order[j]]);
      }
    }
  }

  // Held until the call is done, so that its version stays loaded.
  ModelLease model_;
  const model::ModelConfig* config_ = nullptr;
  std::vector<float> logits_;
  std::vector<float> probabilities_;
};

// A RegressChunk call: takes its session over for the whole call. The
// chunk is applied by its commit, made once the engine has run it and only
// if the client still waits, before the answer leaves; a client that loses
// the answer resends the chunk with expected_first_step and gets it again.
class ChunkCall final
    : public TypedUnaryCall<v1::RegressRequest, v1::RegressResponse> {
 public:
  ChunkCall(const ServingState& state, grpc::CallbackServerContext& context)
      : TypedUnaryCall(state, context, Method::kRegressChunk, "RegressChunk") {}

  void Computed(absl::Status status) { Finished(status); }

 private:
  void Run() override {
    if (absl::Status status = Accept(); !status.ok()) Fail(status);
    // Accepted chunks are finished by their task.
  }

  absl::Status Accept() {
    set_metrics(
        state_.MetricsFor(request().model(), request().model_version()));
    ASSIGN_OR_RETURN(AttachedModelSession attached,
                     AttachModelSession(state_, request(), caller()));
    model_ = std::move(attached.model);
    runtime::ModelRuntime* model = model_.get();
    // A resumed session may run on another version.
    set_metrics(state_.MetricsFor(*model));
    session_ = std::move(attached.session);
    config_ = &model->config();
    ASSIGN_OR_RETURN(chunk_, PendingChunk::Prepare(request(), session_,
                                                   *config_, response()));
    switch (chunk_->kind()) {
      case PendingChunk::Kind::kRun:
        break;
      case PendingChunk::Kind::kCommit:
        Finished(CommitNow(state_, *chunk_, session_, response()));
        return absl::OkStatus();
      case PendingChunk::Kind::kReplay:
        NoteReplay(state_, *config_);
        [[fallthrough]];
      case PendingChunk::Kind::kRead:
        Respond();
        return absl::OkStatus();
    }
    auto task =
        std::make_unique<CallTask<runtime::RegressTask, ChunkCall>>(this);
    task->method = Method::kRegressChunk;
    task->item = chunk_->Item(request(), session_, response());
    task->commit = chunk_->Commit(session_, response());
    task->deadline = deadline_;
    std::unique_ptr<runtime::RegressTask> base = std::move(task);
    return model->Regress(base);
  }

  // The chunk's commit came back.
  void Finished(const absl::Status& status) {
    if (!status.ok()) {
      Fail(status);
      return;
    }
    chunk_->Applied(session_, response());
    Respond();
  }

  void Respond() {
    chunk_->Describe(session_, *config_, /*with_token=*/true, response());
    Answer(response());
  }

  ModelLease model_;  // Held until the call is done.
  const model::ModelConfig* config_ = nullptr;
  sessions::AttachedSession session_;
  std::optional<PendingChunk> chunk_;
};

// ListModels and GetModel are not counted: they have no model series, so
// their method label is never used.
class ListModelsCall final
    : public TypedUnaryCall<v1::ListModelsRequest, v1::ListModelsResponse> {
 public:
  ListModelsCall(const ServingState& state,
                 grpc::CallbackServerContext& context)
      : TypedUnaryCall(state, context, Method::kClassify, "ListModels") {}

 private:
  void Run() override {
    for (const ModelSet* set : state_.models.All()) {
      v1::ModelInfo info;
      FillModelInfo(*set, state_.limits, info);
      // A model whose every version is unloaded is listed no more.
      if (info.versions_size() > 0) *response().add_models() = std::move(info);
    }
    Answer(response());
  }
};

class GetModelCall final
    : public TypedUnaryCall<v1::GetModelRequest, v1::ModelInfo> {
 public:
  GetModelCall(const ServingState& state, grpc::CallbackServerContext& context)
      : TypedUnaryCall(state, context, Method::kClassify, "GetModel") {}

 private:
  void Run() override {
    absl::StatusOr<const ModelSet*> model =
        state_.FindModelSet(request().model());
    if (!model.ok()) {
      Fail(model.status());
      return;
    }
    FillModelInfo(**model, state_.limits, response());
    if (response().versions_size() == 0) {
      Fail(absl::NotFoundError(absl::StrCat(
          "model: model \"", request().model(), "\" has no version loaded")));
      return;
    }
    Answer(response());
  }
};

// A Regress stream refused before its first read.
class RefusedStream final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit RefusedStream(const absl::Status& status) {
    Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

constexpr std::string_view kMethodPrefix = "/rnnserve.v1.Inference/";

}  // namespace

grpc::ServerGenericBidiReactor* UnaryMethods::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  std::string_view method = context->method();
  UnaryCall* call = nullptr;
  if (method.substr(0, kMethodPrefix.size()) == kMethodPrefix) {
    method.remove_prefix(kMethodPrefix.size());
    if (method == "Classify") {
      call = new ClassifyCall(state_, *context);
    } else if (method == "RegressChunk") {
      call = new ChunkCall(state_, *context);
    } else if (method == "ListModels") {
      call = new ListModelsCall(state_, *context);
    } else if (method == "GetModel") {
      call = new GetModelCall(state_, *context);
    }
  } else if (method.substr(0, kOipMethodPrefix.size()) == kOipMethodPrefix) {
    call = NewOipCall(state_, *context, method.substr(kOipMethodPrefix.size()));
  }
  // Anything else is no method of this server: UNIMPLEMENTED, unread.
  if (call == nullptr)
    return grpc::CallbackGenericService::CreateReactor(context);
  call->Start();
  return call;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
InferenceService::Regress(grpc::CallbackServerContext* context) {
  absl::StatusOr<AdmittedCaller> admitted =
      AdmitCaller(state_, *context, "Regress");
  if (!admitted.ok()) return new RefusedStream(admitted.status());
  return new RegressStream(state_, context, std::move(admitted->caller),
                           std::move(admitted->slot));
}

}  // namespace rnnserve::service
