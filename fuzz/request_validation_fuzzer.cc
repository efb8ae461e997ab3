// Fuzzes request validation: the input is parsed as a ClassifyRequest and as
// a RegressRequest, as the server receives them off the wire, and each that
// parses is validated against a small fixed model, under the server's default
// limits and under tight ones that the fuzzer can reach. Checks what the
// batcher and the engine rely on in a request that passes.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_check.h"
#include "google/protobuf/stubs/logging.h"
#include "rnnserve/v1/inference.pb.h"
#include "server/model/model.h"
#include "server/service/limits.h"
#include "server/service/validation.h"

namespace {

namespace model = rnnserve::model;
namespace service = rnnserve::service;
namespace v1 = rnnserve::v1;

model::ModelConfig SmallModel() {
  model::ModelConfig config;
  config.name = "fuzz_model";
  config.version = "1";
  config.cell = model::Cell::kLstm;
  config.input_size = 3;
  config.hidden_size = 4;
  config.output_size = 2;
  return config;
}

// steps and values of one sequence or chunk that passed validation.
void CheckSteps(uint32_t steps,
                const google::protobuf::RepeatedField<float>& values,
                const model::ModelConfig& config,
                const service::Limits& limits) {
  FUZZ_CHECK(steps <= static_cast<uint32_t>(limits.max_steps));
  FUZZ_CHECK(static_cast<uint64_t>(values.size()) ==
             uint64_t{steps} * config.input_size);
  for (float value : values) FUZZ_CHECK(std::isfinite(value));
}

void CheckClassify(const v1::ClassifyRequest& request,
                   const model::ModelConfig& config,
                   const service::Limits& limits) {
  const absl::Status status =
      service::ValidateClassify(request, config, limits);
  if (!status.ok()) {
    FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(request.sequences_size() >= 1);
  FUZZ_CHECK(request.sequences_size() <= limits.max_sequences_per_request);
  for (const v1::Sequence& sequence : request.sequences()) {
    FUZZ_CHECK(sequence.steps() >= 1);
    CheckSteps(sequence.steps(), sequence.values(), config, limits);
  }
}

void CheckChunk(const v1::RegressRequest& request,
                const model::ModelConfig& config,
                const service::Limits& limits) {
  const absl::Status status = service::ValidateChunk(request, config, limits);
  if (!status.ok()) {
    FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  // Zero steps are allowed: a reset, an end, or a read of the position.
  CheckSteps(request.steps(), request.values(), config, limits);
}

}  // namespace

// Parsing a string field with invalid UTF-8 makes protobuf log an error line;
// with millions of inputs that is gigabytes of log and no information.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const model::ModelConfig config = SmallModel();
  static const service::Limits defaults;
  static const service::Limits tight = {.max_steps = 8,
                                        .max_sequences_per_request = 3};
  FUZZ_CHECK(model::ValidateConfig(config).ok());

  v1::ClassifyRequest classify;
  if (classify.ParseFromArray(data, static_cast<int>(size))) {
    CheckClassify(classify, config, defaults);
    CheckClassify(classify, config, tight);
  }
  v1::RegressRequest regress;
  if (regress.ParseFromArray(data, static_cast<int>(size))) {
    CheckChunk(regress, config, defaults);
    CheckChunk(regress, config, tight);
  }
  return 0;
}
