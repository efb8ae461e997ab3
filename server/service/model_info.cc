#include "server/service/model_info.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/common/string_view.h"

namespace rnnserve::service {
namespace {

v1::Cell ToProto(model::Cell cell) {
  switch (cell) {
    case model::Cell::kLstm:
      return v1::CELL_LSTM;
    case model::Cell::kGru:
      return v1::CELL_GRU;
    case model::Cell::kRnnTanh:
      return v1::CELL_RNN_TANH;
    case model::Cell::kRnnRelu:
      return v1::CELL_RNN_RELU;
  }
  return v1::CELL_UNSPECIFIED;
}

}  // namespace

v1::VersionState ToProto(VersionState state) {
  switch (state) {
    case VersionState::kLoading:
      return v1::VERSION_STATE_LOADING;
    case VersionState::kReady:
      return v1::VERSION_STATE_READY;
    case VersionState::kDraining:
      return v1::VERSION_STATE_DRAINING;
    case VersionState::kUnloaded:
      return v1::VERSION_STATE_UNLOADED;
    case VersionState::kFailed:
      return v1::VERSION_STATE_FAILED;
  }
  return v1::VERSION_STATE_UNSPECIFIED;
}

void FillModelInfo(const VersionInfo& version, const Limits& limits,
                   v1::ModelInfo& info) {
  info.set_state(ToProto(version.state));
  info.set_sessions(
      static_cast<uint64_t>(std::max<int64_t>(0, version.sessions)));
  if (!version.config.has_value()) {
    info.set_version(version.version);
    return;
  }
  const model::ModelConfig& c = *version.config;
  info.set_name(c.name);
  info.set_version(c.version);
  info.set_cell(ToProto(c.cell));
  info.set_task(c.task == model::Task::kClassification ? v1::TASK_CLASSIFICATION
                                                       : v1::TASK_REGRESSION);
  info.set_input_size(c.input_size);
  info.set_hidden_size(c.hidden_size);
  info.set_num_layers(c.num_layers);
  info.set_bidirectional(c.bidirectional);
  info.set_output_size(c.output_size);
  for (const std::string& label : c.labels) info.add_labels(label);
  if (c.task == model::Task::kClassification) {
    info.set_readout(std::string(model::ReadoutName(c.readout)));
  } else {
    info.set_output_activation(
        std::string(model::OutputActivationName(c.output_activation)));
  }
  for (const model::HeadLayer& layer : c.head) {
    const std::string_view kind = model::HeadLayerName(layer.kind);
    info.add_head(layer.kind == model::HeadLayerKind::kLinear
                      ? absl::StrCat(AbslView(kind), ":", layer.width)
                      : std::string(kind));
  }
  info.set_input_kind(c.has_embedding() ? v1::INPUT_KIND_TOKEN_IDS
                                        : v1::INPUT_KIND_VALUES);
  if (c.has_embedding()) info.set_vocabulary_size(c.embedding.num_embeddings);
  if (!c.tokenizer.tokens.empty()) {
    v1::Tokenizer* tokenizer = info.mutable_tokenizer();
    tokenizer->set_type("characters");
    for (const std::string& token : c.tokenizer.tokens) {
      tokenizer->add_tokens(token);
    }
    if (c.tokenizer.unknown_id >= 0) {
      tokenizer->set_unknown_id(static_cast<uint32_t>(c.tokenizer.unknown_id));
    }
    tokenizer->set_lowercase(c.tokenizer.lowercase);
  }
  info.set_description(c.description);
  info.set_max_steps(limits.max_steps);
  info.set_max_sequences_per_request(limits.max_sequences_per_request);
  if (version.runtime == nullptr) return;
  const batching::QueueOptions& q = version.runtime->queue_options();
  v1::BatchingInfo* batching = info.mutable_batching();
  batching->set_max_batch_size(q.max_batch_size);
  batching->set_max_queue_delay_us(
      absl::ToInt64Microseconds(q.max_queue_delay));
  batching->set_max_queued_items(q.max_queued_items);
}

bool FillModelInfo(const ModelSet& model, const Limits& limits,
                   v1::ModelInfo& info) {
  const std::vector<VersionInfo> versions = model.Versions();
  const VersionInfo* newest = nullptr;
  for (const VersionInfo& v : versions) {
    if (v.state == VersionState::kReady) newest = &v;
  }
  if (newest != nullptr) {
    FillModelInfo(*newest, limits, info);
  } else {
    info.set_name(model.name());
  }
  for (const VersionInfo& v : versions) {
    if (v.config.has_value()) FillModelInfo(v, limits, *info.add_versions());
  }
  return newest != nullptr;
}

}  // namespace rnnserve::service
