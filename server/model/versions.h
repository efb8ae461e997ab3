// Model versions on disk (docs/model-format.md, "Versions"): a model folder
// holds either one model (config.json and its weights: one version, named by
// the config's "version"), or numbered version folders ("1/", "2/", ...),
// each such a model, of which an optional model.json's version policy picks
// the ones to serve (default: the newest one).
//
// All functions are free of shared state and safe to call from any thread.
#ifndef RNNSERVE_SERVER_MODEL_VERSIONS_H_
#define RNNSERVE_SERVER_MODEL_VERSIONS_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/model/model.h"

namespace rnnserve::model {

// The file in a model folder holding settings of the model as a whole.
inline constexpr char kModelSettingsFile[] = "model.json";
// Version folder names have 1 to this many digits.
inline constexpr size_t kMaxVersionDigits = 18;

// Which numbered versions of a model are served.
struct VersionPolicy {
  enum class Kind {
    kLatest,    // The num_versions highest numbers present.
    kSpecific,  // Exactly `versions`; each must be present.
    kAll,       // Every version present.
  };
  Kind kind = Kind::kLatest;
  int num_versions = 1;           // kLatest: >= 1.
  std::vector<int64_t> versions;  // kSpecific: ascending, no repeats.
};

// The number a version folder's name (or a version string) spells: decimal
// digits, no sign, no leading zero (so "7" and "07" are not two names of one
// version), at most kMaxVersionDigits. nullopt for anything else.
std::optional<int64_t> VersionNumber(std::string_view name);

// Parses a model.json: {"version_policy": {"latest": {"num_versions": N}}},
// {"version_policy": {"specific": {"versions": [1, 3]}}} or
// {"version_policy": {"all": {}}}. `source` names the file in messages,
// which also name the key. Anything else is InvalidArgument.
absl::StatusOr<VersionPolicy> ParseVersionPolicy(std::string_view json,
                                                 std::string_view source);

// Of the version numbers `present` (ascending), the ones `policy` selects,
// ascending. InvalidArgument naming `source` when a specific version is not
// present.
absl::StatusOr<std::vector<int64_t>> SelectVersions(
    const VersionPolicy& policy, const std::vector<int64_t>& present,
    std::string_view source);

// A version a model folder offers under its policy, not yet read.
struct VersionSource {
  // The version folder's name ("3"); empty for a flat model folder, whose
  // config names its version.
  std::string folder_version;
  std::filesystem::path dir;  // Its config and weights.
};

// The model name a model folder gives: its own name.
std::string ModelFolderName(const std::filesystem::path& dir);

// The versions of the model in folder `dir` that its policy selects, oldest
// first, without reading a config or weights. Refused as LoadModelVersions.
absl::StatusOr<std::vector<VersionSource>> ListModelVersions(
    const std::filesystem::path& dir);

// Loads `source`, a version of the model called `name` (as
// LoadModelVersions does for each).
absl::StatusOr<Model> LoadVersionSource(const VersionSource& source,
                                        const std::string& name);

// A string that changes when a file directly in `dir` is added, removed,
// resized or rewritten: each regular file's name, size and modification
// time. Empty when `dir` cannot be read.
std::string FolderFingerprint(const std::filesystem::path& dir);

// Loads the versions of the model in folder `dir` (named after the folder)
// that its policy selects, oldest first. A flat folder gives its one model.
// In a numbered version folder the config's "version" must be the folder's
// name. Refused, naming the file or folder: a folder with both config.json
// and version folders, a sub-folder whose name is not a version number, a
// model.json beside a flat model or with bad content, a specific version
// that is missing; a folder with neither config.json nor a version folder
// is NotFound. Plain files other than model.json and entries starting with
// '.' are skipped among version folders.
absl::StatusOr<std::vector<Model>> LoadModelVersions(
    const std::filesystem::path& dir);

}  // namespace rnnserve::model

#endif  // RNNSERVE_SERVER_MODEL_VERSIONS_H_
