#include "server/model/loader.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "server/common/file_reader.h"
#include "server/common/json.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"
#include "server/model/config.h"
#include "server/model/safetensors.h"
#include "server/model/tensors.h"
#include "server/model/versions.h"

namespace rnnserve::model {
namespace {

// Weights are copied from the file's bytes as they lie: that is only right
// where a float is little-endian IEEE 754 binary32, as the format stores it.
static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian");
static_assert(std::numeric_limits<float>::is_iec559 && sizeof(float) == 4,
              "F32 must be IEEE 754 binary32");

constexpr size_t kMaxModelNameBytes = 128;

using json::Quote;

// The config values that decide which tensors exist, for messages about a
// missing or an unexpected one.
std::string TensorSetSummary(const ModelConfig& config) {
  return absl::StrCat("cell ", AbslView(CellName(config.cell)), ", num_layers ",
                      config.num_layers, ", bidirectional ",
                      config.bidirectional ? "true" : "false", ", bias ",
                      config.bias ? "true" : "false",
                      config.head.empty() ? "" : ", a Sequential \"head\"");
}

// When a recurrent tensor's shape contradicts the config, the file's own
// rnn.weight_hh_l0, shaped (gates x hidden, hidden), usually tells which of
// hidden_size and cell is wrong. Returns "" when it tells nothing new.
std::string ContradictionHint(const Safetensors& file,
                              const ModelConfig& config,
                              std::string_view config_source) {
  for (const TensorView& tensor : file.tensors) {
    if (tensor.name != "rnn.weight_hh_l0") continue;
    if (tensor.shape.size() != 2 || tensor.shape[1] <= 0 ||
        tensor.shape[0] % tensor.shape[1] != 0) {
      return "";
    }
    const int64_t hidden = tensor.shape[1];
    const int64_t gates = tensor.shape[0] / hidden;
    std::string fits;
    if (hidden != config.hidden_size) {
      absl::StrAppend(&fits, "hidden_size ", hidden);
    }
    if (gates != NumGates(config.cell)) {
      const char* cells = gates == 4   ? " (lstm)"
                          : gates == 3 ? " (gru)"
                          : gates == 1 ? " (rnn_tanh or rnn_relu)"
                                       : "";
      absl::StrAppend(&fits, fits.empty() ? "" : " and ", gates, " gates",
                      cells);
    }
    if (fits.empty()) return "";
    return absl::StrCat(
        "; the file's rnn.weight_hh_l0 ", FormatShape(tensor.shape), " fits ",
        fits, ", but ", AbslView(config_source), " says hidden_size ",
        config.hidden_size, ", cell ", AbslView(CellName(config.cell)), " (",
        NumGates(config.cell), " gates)");
  }
  return "";
}

// Checks `tensor` against `spec` and copies its values into `values`.
absl::Status ReadTensor(const TensorView& tensor, const TensorSpec& spec,
                        const std::string& where, const std::string& hint,
                        std::vector<float>* values) {
  if (tensor.dtype != DType::kF32) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " has dtype ", AbslView(DTypeName(tensor.dtype)),
                     ", expected F32"));
  }
  if (tensor.shape != spec.shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, " has shape ", FormatShape(tensor.shape), ", expected ",
        FormatShape(spec.shape), " (", spec.explanation, ")", hint));
  }
  values->resize(static_cast<size_t>(tensor.num_elements));
  std::memcpy(values->data(), tensor.data.data(), tensor.data.size());
  for (size_t i = 0; i < values->size(); ++i) {
    if (!std::isfinite((*values)[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " has a non-finite value (", (*values)[i], ") at index ", i));
    }
  }
  return absl::OkStatus();
}

// The tensors of `weights` into a model of `config`.
absl::StatusOr<Model> BuildModel(ModelConfig config, std::string_view weights,
                                 std::string_view config_source,
                                 std::string_view weights_source) {
  ASSIGN_OR_RETURN(Safetensors file, ParseSafetensors(weights, weights_source));
  const std::string source(weights_source);
  absl::flat_hash_map<std::string_view, const TensorView*> by_name;
  for (const TensorView& tensor : file.tensors) {
    by_name.emplace(tensor.name, &tensor);
  }
  const std::vector<TensorSpec> specs = ExpectedTensors(config);
  absl::flat_hash_set<std::string_view> expected;
  for (const TensorSpec& spec : specs) {
    expected.insert(spec.name);
    if (!by_name.contains(spec.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": missing tensor \"", spec.name, "\", which ",
                       AbslView(config_source), " (", TensorSetSummary(config),
                       ") calls for"));
    }
  }
  for (const TensorView& tensor : file.tensors) {
    if (!expected.contains(tensor.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": unexpected tensor ", Quote(tensor.name), ": ",
                       AbslView(config_source), " (", TensorSetSummary(config),
                       ") calls for no such tensor"));
    }
  }

  Model model;
  model.config = std::move(config);
  model.layers.resize(static_cast<size_t>(model.config.num_layers) *
                      model.config.num_directions());
  model.head_layers.resize(model.config.head.size());
  const std::string hint = ContradictionHint(file, model.config, config_source);
  for (const TensorSpec& spec : specs) {
    const std::string where =
        absl::StrCat(source, ": tensor \"", spec.name, "\"");
    RETURN_IF_ERROR(ReadTensor(*by_name.at(spec.name), spec, where,
                               spec.kind == TensorKind::kHeadBias ? "" : hint,
                               &MutableTensorValues(model, spec)));
  }
  // Everything above implies it; checked anyway because the engine relies
  // on it and the two must not drift apart.
  if (absl::Status valid = ValidateModel(model); !valid.ok()) {
    return absl::InternalError(
        absl::StrCat(source, ": loaded model is invalid: ", valid.message()));
  }
  return model;
}

}  // namespace

absl::Status ValidateModelName(std::string_view name) {
  bool valid =
      !name.empty() && name.size() <= kMaxModelNameBytes && name.front() != '.';
  for (char c : name) {
    valid =
        valid && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.');
  }
  if (!valid) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model name ", Quote(name), " must be 1 to ", kMaxModelNameBytes,
        " letters, digits, '_', '-' or '.', not starting with '.'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Model> LoadModelFromBytes(std::string_view name,
                                         std::string_view config_json,
                                         std::string_view weights,
                                         std::string_view config_source,
                                         std::string_view weights_source) {
  RETURN_IF_ERROR(ValidateModelName(name));
  ASSIGN_OR_RETURN(ModelConfig config,
                   ParseModelConfig(config_json, config_source));
  config.name = std::string(name);
  try {
    return BuildModel(std::move(config), weights, config_source,
                      weights_source);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(
        AbslView(weights_source), ": out of memory loading the weights"));
  }
}

namespace {

// Loads folder `dir` as model `name`; with `version`, the config's
// "version" must be it.
absl::StatusOr<Model> LoadModelFolder(const std::filesystem::path& dir,
                                      std::string_view name,
                                      std::optional<std::string_view> version) {
  const std::string folder = dir.string();
  if (absl::Status valid = ValidateModelName(name); !valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(folder, ": ", valid.message()));
  }
  RETURN_IF_ERROR(
      CheckFolder(dir, version ? "version folder" : "model folder"));
  const std::string config_path = (dir / "config.json").string();
  ASSIGN_OR_RETURN(const std::string config_json,
                   ReadWholeFile(config_path, kMaxConfigFileBytes));
  // Parsed twice (here for the weights' file name, then by
  // LoadModelFromBytes): a config is a few hundred bytes.
  ASSIGN_OR_RETURN(const ModelConfig config,
                   ParseModelConfig(config_json, config_path));
  if (version && config.version != *version) {
    return absl::InvalidArgumentError(absl::StrCat(
        config_path, ": \"version\" must be \"", AbslView(*version),
        "\", the name of its version folder, got ", Quote(config.version)));
  }
  const std::string weights_path = (dir / config.weights_file).string();
  ASSIGN_OR_RETURN(const std::string weights,
                   ReadWholeFile(weights_path, kMaxWeightsFileBytes));
  return LoadModelFromBytes(name, config_json, weights, config_path,
                            weights_path);
}

}  // namespace

absl::StatusOr<Model> LoadModel(const std::filesystem::path& dir) {
  std::filesystem::path name = dir.filename();
  if (name.empty()) name = dir.parent_path().filename();  // "models/x/"
  return LoadModelFolder(dir, name.string(), std::nullopt);
}

absl::StatusOr<Model> LoadModelVersion(const std::filesystem::path& dir,
                                       std::string_view name,
                                       std::string_view version) {
  return LoadModelFolder(dir, name, version);
}

absl::StatusOr<std::vector<Model>> LoadModelRepository(
    const std::filesystem::path& dir) {
  RETURN_IF_ERROR(CheckFolder(dir, "model repository"));
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListSubfolders(dir));
  if (names.empty()) {
    return absl::NotFoundError(
        absl::StrCat(dir.string(), ": model repository has no model folder"));
  }
  std::vector<Model> models;
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(std::vector<Model> versions,
                     LoadModelVersions(dir / name));
    for (Model& model : versions) models.push_back(std::move(model));
  }
  return models;
}

}  // namespace rnnserve::model
