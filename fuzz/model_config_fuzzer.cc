// Fuzzes the config.json reader with any bytes, and checks what the loader
// relies on in a config it accepts: it passes ValidateConfig, and the
// tensors it calls for add up to NumParameters, within the limit.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "server/model/config.h"
#include "server/model/model.h"
#include "server/model/tensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace model = rnnserve::model;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<model::ModelConfig> config =
      model::ParseModelConfig(text, "fuzz/config.json");
  if (!config.ok()) {
    FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(config->name.empty());
  FUZZ_CHECK(model::ValidateConfig(*config).ok());
  FUZZ_CHECK(config->labels.empty() ||
             config->labels.size() == static_cast<size_t>(config->output_size));
  int64_t parameters = 0;
  for (const model::TensorSpec& spec : model::ExpectedTensors(*config)) {
    FUZZ_CHECK(spec.num_elements() > 0);
    parameters += spec.num_elements();
  }
  FUZZ_CHECK(parameters == model::NumParameters(*config));
  FUZZ_CHECK(parameters <= model::kMaxModelParameters);
  FUZZ_CHECK(config->state_size() > 0);
  return 0;
}
