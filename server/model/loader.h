// Loads models from the model repository: each model is a folder holding
// config.json and a safetensors weights file (docs/model-format.md). Loading
// checks everything, so that a bad file stops start-up with a message naming
// the file and the key or tensor, and what was expected.
//
// All functions are free of shared state and safe to call from any thread.
#ifndef RNNSERVE_SERVER_MODEL_LOADER_H_
#define RNNSERVE_SERVER_MODEL_LOADER_H_

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/model/model.h"

namespace rnnserve::model {

// Files larger than these are refused before they are read.
inline constexpr uint64_t kMaxConfigFileBytes = uint64_t{16} << 20;
inline constexpr uint64_t kMaxWeightsFileBytes = uint64_t{2} << 30;

// A model name (its folder's name) is 1 to 128 ASCII letters, digits, '_',
// '-' and '.', not starting with '.'. InvalidArgument otherwise.
absl::Status ValidateModelName(std::string_view name);

// Builds a model from the bytes of its two files; the entry point for
// fuzzing, and what LoadModel does once it has read them. The labels name
// the files in messages. Every tensor the config calls for must be in the
// weights, F32, with the exact shape and finite values, and no other tensor
// may be. Any problem is InvalidArgument.
absl::StatusOr<Model> LoadModelFromBytes(std::string_view name,
                                         std::string_view config_json,
                                         std::string_view weights,
                                         std::string_view config_source,
                                         std::string_view weights_source);

// Loads the model in folder `dir`, named after the folder. Messages name the
// files by their path as `dir` spells it ("models/x/config.json"). A missing
// folder or file is NotFound; bad content is InvalidArgument.
absl::StatusOr<Model> LoadModel(const std::filesystem::path& dir);

// Loads the model in folder `dir` as version `version` of model `name`: a
// numbered version folder (server/model/versions.h). The config's
// "version" must be `version` (InvalidArgument naming the file and key).
absl::StatusOr<Model> LoadModelVersion(const std::filesystem::path& dir,
                                       std::string_view name,
                                       std::string_view version);

// Loads every model of a repository, sorted by name, each model's versions
// oldest first (LoadModelVersions): each sub-folder of `dir` is a model.
// Regular files (a README) and entries whose name starts with '.' (editor
// or Kubernetes ConfigMap bookkeeping such as "..data") are skipped. The
// first bad model fails the whole load with its message; a repository
// without a model is NotFound.
absl::StatusOr<std::vector<Model>> LoadModelRepository(
    const std::filesystem::path& dir);

}  // namespace rnnserve::model

#endif  // RNNSERVE_SERVER_MODEL_LOADER_H_
