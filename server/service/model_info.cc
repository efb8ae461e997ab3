#include "server/service/model_info.h"

#include "absl/time/time.h"

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

void FillModelInfo(const runtime::ModelRuntime& model, const Limits& limits,
                   v1::ModelInfo& info) {
  const model::ModelConfig& c = model.config();
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
  info.set_description(c.description);
  const batching::QueueOptions& q = model.queue_options();
  v1::BatchingInfo* batching = info.mutable_batching();
  batching->set_max_batch_size(q.max_batch_size);
  batching->set_max_queue_delay_us(
      absl::ToInt64Microseconds(q.max_queue_delay));
  batching->set_max_queued_items(q.max_queued_items);
  info.set_max_steps(limits.max_steps);
  info.set_max_sequences_per_request(limits.max_sequences_per_request);
}

void FillModelInfo(const ModelSet& model, const Limits& limits,
                   v1::ModelInfo& info) {
  FillModelInfo(*model.newest(), limits, info);
  for (const auto& version : model.versions()) {
    FillModelInfo(*version, limits, *info.add_versions());
  }
}

}  // namespace rnnserve::service
