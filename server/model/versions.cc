#include "server/model/versions.h"

#include <algorithm>
#include <string>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/file_reader.h"
#include "server/common/json.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"
#include "server/model/loader.h"

namespace rnnserve::model {
namespace {

namespace fs = std::filesystem;
using json::Describe;
using json::Value;

absl::Status PolicyError(std::string_view source, std::string_view key,
                         std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      AbslView(source), ": \"", AbslView(key), "\" ", AbslView(what)));
}

// `object` must be an object whose keys are all in `known`.
absl::Status CheckObject(const Value& object, std::string_view key,
                         std::initializer_list<std::string_view> known,
                         std::string_view source) {
  if (!object.is_object()) {
    return PolicyError(
        source, key, absl::StrCat("must be an object, got ", Describe(object)));
  }
  for (const Value::Member& member : object.object()) {
    if (std::find(known.begin(), known.end(), member.first) == known.end()) {
      return PolicyError(
          source, key,
          absl::StrCat("has unknown key ", json::Quote(member.first)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> SpecificVersions(const Value& specific,
                                                      std::string_view source) {
  constexpr std::string_view kKey = "version_policy.specific.versions";
  const Value* versions = specific.Find("versions");
  if (versions == nullptr) return PolicyError(source, kKey, "is required");
  if (!versions->is_array() || versions->array().empty()) {
    return PolicyError(source, kKey,
                       absl::StrCat("must be a non-empty array of version "
                                    "numbers, got ",
                                    Describe(*versions)));
  }
  std::vector<int64_t> numbers;
  for (const Value& v : versions->array()) {
    std::optional<int64_t> n = v.integer();
    if (!n || *n < 0 || !VersionNumber(absl::StrCat(*n))) {
      return PolicyError(
          source, kKey,
          absl::StrCat("must hold version numbers (integers >= 0), got ",
                       Describe(v)));
    }
    numbers.push_back(*n);
  }
  std::sort(numbers.begin(), numbers.end());
  if (std::adjacent_find(numbers.begin(), numbers.end()) != numbers.end()) {
    return PolicyError(source, kKey, "names a version twice");
  }
  return numbers;
}

// Whether `dir` holds a file or folder called `name`.
bool Exists(const fs::path& dir, std::string_view name) {
  std::error_code ec;
  return fs::exists(dir / name, ec);
}

absl::StatusOr<VersionPolicy> ReadPolicy(const fs::path& dir) {
  if (!Exists(dir, kModelSettingsFile)) return VersionPolicy();
  const std::string path = (dir / kModelSettingsFile).string();
  ASSIGN_OR_RETURN(const std::string text,
                   ReadWholeFile(path, kMaxConfigFileBytes));
  return ParseVersionPolicy(text, path);
}

}  // namespace

std::optional<int64_t> VersionNumber(std::string_view name) {
  if (name.empty() || name.size() > kMaxVersionDigits) return std::nullopt;
  if (name.size() > 1 && name.front() == '0') return std::nullopt;
  int64_t n = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

absl::StatusOr<VersionPolicy> ParseVersionPolicy(std::string_view json,
                                                 std::string_view source) {
  ASSIGN_OR_RETURN(const Value root, json::ParseObject(json, source));
  for (const Value::Member& member : root.object()) {
    if (member.first != "version_policy") {
      return absl::InvalidArgumentError(absl::StrCat(
          AbslView(source), ": unknown key ", json::Quote(member.first),
          " (a model.json holds \"version_policy\")"));
    }
  }
  VersionPolicy policy;
  const Value* p = root.Find("version_policy");
  if (p == nullptr) return policy;
  RETURN_IF_ERROR(
      CheckObject(*p, "version_policy", {"latest", "specific", "all"}, source));
  if (p->object().size() != 1) {
    return PolicyError(source, "version_policy",
                       "must hold exactly one of \"latest\", \"specific\", "
                       "\"all\"");
  }
  const auto& [kind, body] = p->object().front();
  const std::string key = absl::StrCat("version_policy.", AbslView(kind));
  if (kind == "latest") {
    RETURN_IF_ERROR(CheckObject(body, key, {"num_versions"}, source));
    if (const Value* n = body.Find("num_versions")) {
      std::optional<int64_t> i = n->integer();
      if (!i || *i < 1 || *i > 1000) {
        return PolicyError(
            source, "version_policy.latest.num_versions",
            absl::StrCat("must be an integer from 1 to 1000, got ",
                         Describe(*n)));
      }
      policy.num_versions = static_cast<int>(*i);
    }
  } else if (kind == "specific") {
    RETURN_IF_ERROR(CheckObject(body, key, {"versions"}, source));
    policy.kind = VersionPolicy::Kind::kSpecific;
    ASSIGN_OR_RETURN(policy.versions, SpecificVersions(body, source));
  } else {
    RETURN_IF_ERROR(CheckObject(body, key, {}, source));
    policy.kind = VersionPolicy::Kind::kAll;
  }
  return policy;
}

absl::StatusOr<std::vector<int64_t>> SelectVersions(
    const VersionPolicy& policy, const std::vector<int64_t>& present,
    std::string_view source) {
  switch (policy.kind) {
    case VersionPolicy::Kind::kAll:
      return present;
    case VersionPolicy::Kind::kLatest: {
      const size_t n = std::min<size_t>(policy.num_versions, present.size());
      return std::vector<int64_t>(present.end() - n, present.end());
    }
    case VersionPolicy::Kind::kSpecific:
      for (int64_t v : policy.versions) {
        if (!std::binary_search(present.begin(), present.end(), v)) {
          return absl::InvalidArgumentError(absl::StrCat(
              AbslView(source),
              ": \"version_policy.specific.versions\" names version ", v,
              ", but there is no version folder \"", v, "\""));
        }
      }
      return policy.versions;
  }
  return present;
}

std::string ModelFolderName(const fs::path& dir) {
  std::string name = dir.filename().string();
  if (name.empty()) name = dir.parent_path().filename().string();
  return name;
}

absl::StatusOr<std::vector<VersionSource>> ListModelVersions(
    const fs::path& dir) {
  const std::string name = ModelFolderName(dir);
  if (absl::Status valid = ValidateModelName(name); !valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir.string(), ": ", valid.message()));
  }
  RETURN_IF_ERROR(CheckFolder(dir, "model folder"));
  ASSIGN_OR_RETURN(const std::vector<std::string> subfolders,
                   ListSubfolders(dir));
  const bool flat = Exists(dir, "config.json");
  if (flat && !subfolders.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir.string(), ": holds both config.json and the folder \"",
        subfolders.front(),
        "\"; a model folder is either one model (config.json and its "
        "weights) or numbered version folders (1/, 2/, ...)"));
  }
  if (flat) {
    if (Exists(dir, kModelSettingsFile)) {
      return absl::InvalidArgumentError(absl::StrCat(
          (dir / kModelSettingsFile).string(),
          ": a version policy needs numbered version folders (1/, 2/, ...), "
          "but this model folder holds one model (config.json)"));
    }
    return std::vector<VersionSource>{{"", dir}};
  }
  if (subfolders.empty()) {
    return absl::NotFoundError(absl::StrCat(
        dir.string(),
        ": model folder has neither config.json nor a numbered version "
        "folder (1/, 2/, ...)"));
  }
  std::vector<int64_t> present;
  for (const std::string& sub : subfolders) {
    std::optional<int64_t> number = VersionNumber(sub);
    if (!number) {
      return absl::InvalidArgumentError(absl::StrCat(
          (dir / sub).string(),
          ": a version folder's name must be a version number (digits, no "
          "leading zero, at most ",
          kMaxVersionDigits, ")"));
    }
    present.push_back(*number);
  }
  std::sort(present.begin(), present.end());
  ASSIGN_OR_RETURN(const VersionPolicy policy, ReadPolicy(dir));
  ASSIGN_OR_RETURN(
      const std::vector<int64_t> selected,
      SelectVersions(policy, present, (dir / kModelSettingsFile).string()));
  std::vector<VersionSource> sources;
  for (int64_t version : selected) {
    sources.push_back({absl::StrCat(version), dir / absl::StrCat(version)});
  }
  return sources;
}

absl::StatusOr<Model> LoadVersionSource(const VersionSource& source,
                                        const std::string& name) {
  if (source.folder_version.empty()) return LoadModel(source.dir);
  return LoadModelVersion(source.dir, name, source.folder_version);
}

std::string FolderFingerprint(const fs::path& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code stat_ec;
    const fs::file_status status = it->status(stat_ec);
    if (stat_ec || !fs::is_regular_file(status)) continue;
    const uintmax_t size = it->file_size(stat_ec);
    const auto modified = it->last_write_time(stat_ec);
    if (stat_ec) continue;
    files.push_back(absl::StrCat(
        it->path().filename().string(), ":", size, ":",
        static_cast<int64_t>(modified.time_since_epoch().count())));
  }
  if (ec) return "";
  std::sort(files.begin(), files.end());
  return absl::StrJoin(files, "/");
}

absl::StatusOr<std::vector<Model>> LoadModelVersions(const fs::path& dir) {
  ASSIGN_OR_RETURN(const std::vector<VersionSource> sources,
                   ListModelVersions(dir));
  const std::string name = ModelFolderName(dir);
  std::vector<Model> models;
  for (const VersionSource& source : sources) {
    ASSIGN_OR_RETURN(Model model, LoadVersionSource(source, name));
    models.push_back(std::move(model));
  }
  return models;
}

}  // namespace rnnserve::model
