// Fuzzes the whole model loader, LoadModelFromBytes, on a model folder's two
// files. The input is config.json, the separator kFileSeparator, then the
// weights file; an input without the separator is all config and no weights.
// fuzz/make_corpus.py writes the seeds in this form.
//
// Checks what the engine relies on in a model the loader accepts: a valid
// config, every tensor ExpectedTensors names at its full size, all finite.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "server/model/loader.h"
#include "server/model/model.h"
#include "server/model/tensors.h"

namespace {

// Cannot occur in a config the parser accepts (a NUL byte outside a string,
// where JSON allows none; raw control bytes are not allowed inside one).
constexpr std::string_view kFileSeparator("\n\0weights\0\n", 11);

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace model = rnnserve::model;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find(kFileSeparator);
  const std::string_view config = input.substr(0, split);
  const std::string_view weights =
      split == std::string_view::npos
          ? std::string_view()
          : input.substr(split + kFileSeparator.size());

  absl::StatusOr<model::Model> loaded =
      model::LoadModelFromBytes("fuzz_model", config, weights,
                                "fuzz/config.json", "fuzz/model.safetensors");
  if (!loaded.ok()) {
    FUZZ_CHECK(loaded.status().code() == absl::StatusCode::kInvalidArgument ||
               loaded.status().code() == absl::StatusCode::kResourceExhausted);
    return 0;
  }
  FUZZ_CHECK(loaded->config.name == "fuzz_model");
  FUZZ_CHECK(model::ValidateModel(*loaded).ok());
  FUZZ_CHECK(loaded->layers.size() ==
             static_cast<size_t>(loaded->config.num_layers) *
                 loaded->config.num_directions());
  for (const model::TensorSpec& spec : model::ExpectedTensors(loaded->config)) {
    const std::vector<float>& values = model::TensorValues(*loaded, spec);
    FUZZ_CHECK(values.size() == static_cast<size_t>(spec.num_elements()));
    for (float value : values) FUZZ_CHECK(std::isfinite(value));
  }
  return 0;
}
