#include "server/service/oip_service.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "inference/grpc_predict_v2.pb.h"
#include "rnnserve/v1/inference.pb.h"
#include "server/common/status_macros.h"
#include "server/service/chunk.h"
#include "server/service/oip_tensors.h"
#include "server/service/validation.h"

#ifndef RNNSERVE_VERSION
#define RNNSERVE_VERSION "unknown"
#endif

namespace rnnserve::service {
namespace {

namespace pb = ::inference;
using metrics::Method;
using oip::AddOutput;
using oip::CheckTensor;
using oip::Classifies;
using oip::FindInputs;
using oip::Input;
using oip::InputSpecs;
using oip::kInt32;
using oip::kLengths;
using oip::kLogits;
using oip::kOutput;
using oip::OutputSpecs;
using oip::ReadFp32;
using oip::ReadInt32;
using oip::RequestedOutputs;
using oip::TensorSpec;

constexpr char kPlatform[] = "rnnserve_onednn";
// Longest string sequence_id taken: ids are names, not payloads.
constexpr size_t kMaxSequenceIdBytes = 256;

// The model a request names, by this protocol's field names; with a
// version, only that version.
absl::StatusOr<ModelLease> FindModelVersion(const ServingState& state,
                                            const std::string& name,
                                            const std::string& version,
                                            const char* name_field,
                                            const char* version_field) {
  absl::StatusOr<ModelLease> model = state.FindModel(name);
  if (!model.ok()) {
    // FindModel names rnnserve.v1's field.
    absl::string_view message = model.status().message();
    absl::ConsumePrefix(&message, "model: ");
    return absl::Status(model.status().code(),
                        absl::StrCat(name_field, ": ", message));
  }
  if (version.empty()) return model;
  absl::StatusOr<ModelLease> found = state.FindModel(name, version);
  if (!found.ok()) {
    // FindModel names rnnserve.v1's field.
    absl::string_view message = found.status().message();
    absl::ConsumePrefix(&message, "model_version: ");
    return absl::NotFoundError(absl::StrCat(version_field, ": ", message));
  }
  return found;
}

// A stream's position in the protocol's sequence parameters.
struct Sequence {
  std::string id;
  bool start = false;
  bool end = false;
};

absl::StatusOr<bool> BoolParameter(const pb::ModelInferRequest& r,
                                   const char* name) {
  auto it = r.parameters().find(name);
  if (it == r.parameters().end()) return false;
  if (it->second.parameter_choice_case() != pb::InferParameter::kBoolParam) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameters.", name, ": expected a bool_param"));
  }
  return it->second.bool_param();
}

absl::StatusOr<Sequence> ReadSequence(const pb::ModelInferRequest& r,
                                      const model::ModelConfig& c) {
  Sequence s;
  ASSIGN_OR_RETURN(s.start, BoolParameter(r, "sequence_start"));
  ASSIGN_OR_RETURN(s.end, BoolParameter(r, "sequence_end"));
  auto it = r.parameters().find("sequence_id");
  if (it == r.parameters().end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "parameters.sequence_id: model \"", c.name,
        "\" is a regression model, whose calls continue a sequence: give a "
        "sequence_id (int64 or string), and sequence_start on its first "
        "request"));
  }
  const pb::InferParameter& p = it->second;
  switch (p.parameter_choice_case()) {
    case pb::InferParameter::kInt64Param:
      s.id = absl::StrCat(p.int64_param());
      break;
    case pb::InferParameter::kUint64Param:
      s.id = absl::StrCat(p.uint64_param());
      break;
    case pb::InferParameter::kStringParam:
      s.id = p.string_param();
      break;
    default:
      return absl::InvalidArgumentError(
          "parameters.sequence_id: expected an int64_param, uint64_param or "
          "string_param");
  }
  if (s.id.empty() || s.id == "0") {
    return absl::InvalidArgumentError(
        "parameters.sequence_id: 0 and \"\" are no sequence id");
  }
  if (s.id.size() > kMaxSequenceIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameters.sequence_id: ", s.id.size(),
                     " bytes, at most ", kMaxSequenceIdBytes, " are allowed"));
  }
  return s;
}

// The session of the caller's sequence: taken over when it exists
// (`restart` when sequence_start asks to begin it again), new under its
// derived token on sequence_start, NOT_FOUND otherwise.
absl::StatusOr<sessions::AttachedSession> AttachSequence(
    const ServingState& state, const Sequence& seq, const model::ModelConfig& c,
    const std::string& caller, bool& restart) {
  const std::string token = OipSequenceToken(caller, seq.id);
  absl::StatusOr<sessions::AttachedSession> s =
      state.sessions->TakeOver(token, c.name, caller);
  if (s.ok()) {
    restart = seq.start;
    return s;
  }
  if (absl::IsInvalidArgument(s.status())) {
    absl::string_view message = s.status().message();
    absl::ConsumePrefix(&message, "session_token: ");
    return absl::InvalidArgumentError(absl::StrCat(
        "parameters.sequence_id: sequence \"", seq.id, "\": ", message));
  }
  if (!absl::IsNotFound(s.status())) return s.status();
  if (seq.start) {
    return state.sessions->CreateWithToken(token, c.name, c.state_size(),
                                           caller);
  }
  return absl::NotFoundError(absl::StrCat(
      "parameters.sequence_id: no sequence \"", seq.id, "\" of model \"",
      c.name,
      "\" for this caller (never started with sequence_start, "
      "ended by sequence_end, or expired); start it with sequence_start"));
}

class ServerLiveCall final
    : public TypedUnaryCall<pb::ServerLiveRequest, pb::ServerLiveResponse> {
 public:
  ServerLiveCall(const ServingState& state, grpc::CallbackServerContext& c)
      : TypedUnaryCall(state, c, Method::kClassify, "ServerLive") {}

 private:
  void Run() override {
    response().set_live(true);
    Answer(response());
  }
};

class ServerReadyCall final
    : public TypedUnaryCall<pb::ServerReadyRequest, pb::ServerReadyResponse> {
 public:
  ServerReadyCall(const ServingState& state, grpc::CallbackServerContext& c)
      : TypedUnaryCall(state, c, Method::kClassify, "ServerReady") {}

 private:
  void Run() override {
    response().set_ready(state_.admission == nullptr ||
                         state_.admission->ready());
    Answer(response());
  }
};

// An unknown model is not ready, rather than an error: readiness probes
// ask before the model is there.
class ModelReadyCall final
    : public TypedUnaryCall<pb::ModelReadyRequest, pb::ModelReadyResponse> {
 public:
  ModelReadyCall(const ServingState& state, grpc::CallbackServerContext& c)
      : TypedUnaryCall(state, c, Method::kClassify, "ModelReady") {}

 private:
  void Run() override {
    if (request().name().empty()) {
      Fail(absl::InvalidArgumentError("name: a model name is required"));
      return;
    }
    const bool found = FindModelVersion(state_, request().name(),
                                        request().version(), "name", "version")
                           .ok();
    response().set_ready(
        found && (state_.admission == nullptr || state_.admission->ready()));
    Answer(response());
  }
};

class ServerMetadataCall final
    : public TypedUnaryCall<pb::ServerMetadataRequest,
                            pb::ServerMetadataResponse> {
 public:
  ServerMetadataCall(const ServingState& state, grpc::CallbackServerContext& c)
      : TypedUnaryCall(state, c, Method::kClassify, "ServerMetadata") {}

 private:
  void Run() override {
    response().set_name("rnnserve");
    response().set_version(RNNSERVE_VERSION);
    Answer(response());
  }
};

void FillTensors(const std::vector<TensorSpec>& specs,
                 google::protobuf::RepeatedPtrField<
                     pb::ModelMetadataResponse::TensorMetadata>& out) {
  for (const TensorSpec& s : specs) {
    pb::ModelMetadataResponse::TensorMetadata* t = out.Add();
    t->set_name(s.name);
    t->set_datatype(s.datatype);
    for (int64_t d : s.shape) t->add_shape(d);
  }
}

class ModelMetadataCall final
    : public TypedUnaryCall<pb::ModelMetadataRequest,
                            pb::ModelMetadataResponse> {
 public:
  ModelMetadataCall(const ServingState& state, grpc::CallbackServerContext& c)
      : TypedUnaryCall(state, c, Method::kClassify, "ModelMetadata") {}

 private:
  void Run() override {
    absl::StatusOr<ModelLease> model = FindModelVersion(
        state_, request().name(), request().version(), "name", "version");
    if (!model.ok()) {
      Fail(model.status());
      return;
    }
    const model::ModelConfig& c = (*model)->config();
    response().set_name(c.name);
    response().add_versions(c.version);
    response().set_platform(kPlatform);
    FillTensors(InputSpecs(c), *response().mutable_inputs());
    FillTensors(OutputSpecs(c), *response().mutable_outputs());
    Answer(response());
  }
};

// ModelInfer: a classification batch, or a chunk of a sequence.
class ModelInferCall final
    : public TypedUnaryCall<pb::ModelInferRequest, pb::ModelInferResponse> {
 public:
  ModelInferCall(const ServingState& state, grpc::CallbackServerContext& c)
      : TypedUnaryCall(state, c, Method::kModelInfer, "ModelInfer") {}

  void Computed(absl::Status status) {
    if (!status.ok()) {
      Fail(status);
      return;
    }
    if (Classifies(*config_)) {
      RespondClassify();
    } else {
      ChunkFinished(absl::OkStatus());
    }
  }

 private:
  void Run() override {
    if (absl::Status status = Accept(); !status.ok()) Fail(status);
    // Accepted calls are finished by their task or their commit.
  }

  absl::Status Accept() {
    ASSIGN_OR_RETURN(model_, FindModelVersion(state_, request().model_name(),
                                              request().model_version(),
                                              "model_name", "model_version"));
    config_ = &model_->config();
    set_metrics(state_.MetricsFor(*model_));
    if (config_->has_embedding()) {
      // Token ids are not carried here yet; rnnserve.v1 carries them.
      return absl::FailedPreconditionError(absl::StrCat(
          "model_name: model \"", config_->name,
          "\" reads token ids, which this endpoint does not take yet; call "
          "rnnserve.v1 Classify, Regress or RegressChunk with token_ids"));
    }
    Input input, lengths;
    RETURN_IF_ERROR(FindInputs(request(), *config_, input, lengths));
    RETURN_IF_ERROR(RequestedOutputs(request(), *config_, outputs_));
    raw_ = request().raw_input_contents_size() > 0;
    if (Classifies(*config_)) return AcceptClassify(input, lengths);
    return AcceptChunk(input);
  }

  // INPUT [batch, steps, features] (and LENGTHS [batch]) as a Classify.
  absl::Status AcceptClassify(const Input& input, const Input& lengths) {
    const Limits& limits = state_.limits;
    RETURN_IF_ERROR(CheckTensor(input, InputSpecs(*config_)[0]));
    batch_ = input.tensor->shape(0);
    steps_ = input.tensor->shape(1);
    if (batch_ < 1 || batch_ > limits.max_sequences_per_request) {
      return absl::InvalidArgumentError(absl::StrCat(
          input.field, ".shape: batch ", batch_, "; 1 to ",
          limits.max_sequences_per_request, " sequences are allowed"));
    }
    if (steps_ < 1 || steps_ > limits.max_steps) {
      return absl::InvalidArgumentError(
          absl::StrCat(input.field, ".shape: ", steps_, " steps; 1 to ",
                       limits.max_steps, " are allowed"));
    }
    const int64_t f = config_->input_size;
    RETURN_IF_ERROR(ReadFp32(input, batch_ * steps_ * f, values_));
    std::vector<int32_t> lens(batch_, static_cast<int32_t>(steps_));
    if (lengths.tensor != nullptr) {
      RETURN_IF_ERROR(CheckTensor(lengths, {kLengths, kInt32, {batch_}}));
      RETURN_IF_ERROR(ReadInt32(lengths, batch_, lens));
      for (int64_t i = 0; i < batch_; ++i) {
        if (lens[i] < 1 || lens[i] > steps_) {
          return absl::InvalidArgumentError(absl::StrCat(
              lengths.field, ": element ", i, " is ", lens[i],
              "; each length must be 1 to the ", steps_, " steps of INPUT"));
        }
      }
    }
    const size_t o = config_->output_size;
    logits_.resize(batch_ * o);
    probabilities_.resize(batch_ * o);
    auto task =
        std::make_unique<CallTask<runtime::ClassifyTask, ModelInferCall>>(this);
    task->method = Method::kModelInfer;
    for (int64_t i = 0; i < batch_; ++i) {
      task->items.push_back(
          {lens[i],
           {values_.data() + i * steps_ * f, static_cast<size_t>(lens[i] * f)},
           {logits_.data() + i * o, o},
           {probabilities_.data() + i * o, o}});
    }
    task->deadline = deadline_;
    std::unique_ptr<runtime::ClassifyTask> base = std::move(task);
    return model_->Classify(base);
  }

  void StartResponse() {
    pb::ModelInferResponse& r = response();
    r.set_model_name(config_->name);
    r.set_model_version(config_->version);
    r.set_id(request().id());
  }

  void RespondClassify() {
    StartResponse();
    const int64_t o = config_->output_size;
    for (const std::string& name : outputs_) {
      AddOutput(response(), name, {batch_, o},
                name == kLogits ? logits_ : probabilities_, raw_);
    }
    Answer(response());
  }

  // INPUT [1, steps, features] as a chunk of the caller's sequence.
  absl::Status AcceptChunk(const Input& input) {
    ASSIGN_OR_RETURN(const Sequence seq, ReadSequence(request(), *config_));
    RETURN_IF_ERROR(CheckTensor(input, InputSpecs(*config_)[0]));
    steps_ = input.tensor->shape(1);
    if (steps_ > state_.limits.max_steps) {
      return absl::InvalidArgumentError(
          absl::StrCat(input.field, ".shape: ", steps_, " steps, at most ",
                       state_.limits.max_steps, " are allowed"));
    }
    RETURN_IF_ERROR(ReadFp32(input, steps_ * config_->input_size, values_));
    bool restart = false;
    ASSIGN_OR_RETURN(session_,
                     AttachSequence(state_, seq, *config_, caller(), restart));
    // The chunk as rnnserve.v1 would send it, so that it runs and commits
    // exactly as a RegressChunk does.
    chunk_request_.set_model(config_->name);
    chunk_request_.set_steps(static_cast<uint32_t>(steps_));
    chunk_request_.mutable_values()->Assign(values_.begin(), values_.end());
    chunk_request_.set_reset_state(restart);
    chunk_request_.set_end_session(seq.end);
    ASSIGN_OR_RETURN(chunk_, PendingChunk::Prepare(chunk_request_, session_,
                                                   *config_, chunk_response_));
    switch (chunk_->kind()) {
      case PendingChunk::Kind::kRun:
        break;
      case PendingChunk::Kind::kCommit:
        ChunkFinished(CommitNow(state_, *chunk_, session_, chunk_response_));
        return absl::OkStatus();
      case PendingChunk::Kind::kReplay:  // Never: no expected_first_step.
      case PendingChunk::Kind::kRead:
        RespondChunk();
        return absl::OkStatus();
    }
    auto task =
        std::make_unique<CallTask<runtime::RegressTask, ModelInferCall>>(this);
    task->method = Method::kModelInfer;
    task->item = chunk_->Item(chunk_request_, session_, chunk_response_);
    task->commit = chunk_->Commit(session_, chunk_response_);
    task->deadline = deadline_;
    std::unique_ptr<runtime::RegressTask> base = std::move(task);
    return model_->Regress(base);
  }

  void ChunkFinished(const absl::Status& status) {
    if (!status.ok()) {
      Fail(status);
      return;
    }
    chunk_->Applied(session_, chunk_response_);
    RespondChunk();
  }

  void RespondChunk() {
    StartResponse();
    AddOutput(response(), kOutput,
              {1, steps_, static_cast<int64_t>(config_->output_size)},
              {chunk_response_.outputs().data(),
               static_cast<size_t>(chunk_response_.outputs_size())},
              raw_);
    Answer(response());
  }

  ModelLease model_;  // Held until the call is done.
  const model::ModelConfig* config_ = nullptr;
  std::vector<std::string> outputs_;
  bool raw_ = false;  // Answer in raw_output_contents, as the request asked.
  int64_t batch_ = 0;
  int64_t steps_ = 0;
  std::vector<float> values_;
  std::vector<float> logits_;
  std::vector<float> probabilities_;
  sessions::AttachedSession session_;
  v1::RegressRequest chunk_request_;
  v1::RegressResponse chunk_response_;
  std::optional<PendingChunk> chunk_;
};

}  // namespace

std::string OipSequenceToken(const std::string& caller,
                             const std::string& sequence_id) {
  return absl::StrCat("oip:", caller, ":", sequence_id);
}

UnaryCall* NewOipCall(const ServingState& state,
                      grpc::GenericCallbackServerContext& context,
                      std::string_view method) {
  if (method == "ModelInfer") return new ModelInferCall(state, context);
  if (method == "ServerLive") return new ServerLiveCall(state, context);
  if (method == "ServerReady") return new ServerReadyCall(state, context);
  if (method == "ModelReady") return new ModelReadyCall(state, context);
  if (method == "ServerMetadata") return new ServerMetadataCall(state, context);
  if (method == "ModelMetadata") return new ModelMetadataCall(state, context);
  return nullptr;
}

}  // namespace rnnserve::service
