#include "server/service/model_repository.h"

#include <algorithm>
#include <map>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/file_reader.h"
#include "server/common/log.h"
#include "server/common/status_macros.h"
#include "server/model/loader.h"

namespace rnnserve::service {
namespace {

namespace fs = std::filesystem;

// The name a version is reported by before its config is read: a flat
// model folder's is in its config.
std::string ShownVersion(const model::VersionSource& source) {
  return source.folder_version.empty() ? "(config.json)"
                                       : source.folder_version;
}

}  // namespace

ModelRepository::ModelRepository(RepositoryOptions options, ModelSets& models,
                                 MakeRuntime make_runtime,
                                 sessions::SessionStore* sessions,
                                 metrics::Metrics* metrics,
                                 OnServing on_serving)
    : options_(std::move(options)),
      models_(models),
      make_runtime_(std::move(make_runtime)),
      sessions_(sessions),
      metrics_(metrics),
      on_serving_(std::move(on_serving)) {}

ModelRepository::~ModelRepository() { Stop(); }

absl::Status ModelRepository::LoadAll() {
  RETURN_IF_ERROR(CheckFolder(options_.root, "model repository"));
  const std::vector<std::string> names = FolderNames();
  if (names.empty()) {
    return absl::NotFoundError(absl::StrCat(
        options_.root.string(), ": model repository has no model folder"));
  }
  for (const std::string& name : names) {
    RETURN_IF_ERROR(ScanModel(name, /*settle=*/false));
  }
  return absl::OkStatus();
}

absl::Status ModelRepository::Add(const model::Model& model) {
  ModelSet& set = models_.GetOrAdd(model.config.name);
  if (set.Find(model.config.version) != nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", model.config.name, " version ",
                     model.config.version, " is given twice"));
  }
  ASSIGN_OR_RETURN(ModelLease runtime, make_runtime_(model));
  set.Publish(std::move(runtime));
  NoteState(set, model.config.version);
  return absl::OkStatus();
}

void ModelRepository::Start(std::function<void()> on_thread_start) {
  thread_ = std::thread([this, on_thread_start = std::move(on_thread_start)] {
    if (on_thread_start) on_thread_start();
    Loop();
  });
}

void ModelRepository::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  // Whoever waits for a command that will not run is told.
  std::deque<Command> left;
  {
    absl::MutexLock lock(&mu_);
    left.swap(commands_);
  }
  for (Command& c : left) {
    if (c.done) c.done(absl::UnavailableError("the server is shutting down"));
  }
}

void ModelRepository::Submit(Command command) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      commands_.push_back(std::move(command));
      return;
    }
  }
  if (command.done) {
    command.done(absl::UnavailableError("the server is shutting down"));
  }
}

void ModelRepository::RequestRescan() {
  Submit({Command::Kind::kRescan, "", nullptr});
}

void ModelRepository::LoadModel(const std::string& model, Done done) {
  Submit({Command::Kind::kLoad, model, std::move(done)});
}

void ModelRepository::UnloadModel(const std::string& model, Done done) {
  Submit({Command::Kind::kUnload, model, std::move(done)});
}

void ModelRepository::Loop() {
  absl::Time next_poll = absl::Now() + options_.poll_interval;
  absl::Time next_check = absl::Now() + options_.drain_check_interval;
  while (true) {
    std::optional<Command> command;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return stopping_ || !commands_.empty();
      };
      absl::Time wake = next_check;
      if (options_.poll && !options_.root.empty()) {
        wake = std::min(wake, next_poll);
      }
      mu_.AwaitWithDeadline(absl::Condition(&ready), wake);
      if (stopping_) return;
      if (!commands_.empty()) {
        command = std::move(commands_.front());
        commands_.pop_front();
      }
    }
    if (command.has_value()) Run(*command);
    const absl::Time now = absl::Now();
    if (options_.poll && !options_.root.empty() && now >= next_poll) {
      RescanAll(/*settle=*/true);
      next_poll = absl::Now() + options_.poll_interval;
    }
    if (now >= next_check) {
      CheckDraining();
      next_check = absl::Now() + options_.drain_check_interval;
    }
  }
}

void ModelRepository::Run(const Command& command) {
  if (command.kind == Command::Kind::kRescan) {
    RescanAll(/*settle=*/false);
    return;
  }
  const std::string& name = command.model;
  absl::Status status = model::ValidateModelName(name);
  if (!status.ok()) {
    status =
        absl::InvalidArgumentError(absl::StrCat("model: ", status.message()));
  } else if (options_.root.empty()) {
    status = absl::FailedPreconditionError(
        "model: this server serves models given at start-up, not a "
        "repository folder");
  } else if (command.kind == Command::Kind::kLoad) {
    {
      absl::MutexLock lock(&mu_);
      unloaded_by_request_.erase(name);
    }
    status = ScanModel(name, /*settle=*/false);
  } else {
    absl::StatusOr<ModelSet*> set = models_.Find(name);
    std::error_code ec;
    if (!set.ok() && !fs::is_directory(options_.root / name, ec)) {
      status = set.status();
    } else {
      {
        absl::MutexLock lock(&mu_);
        unloaded_by_request_.insert(name);
      }
      if (set.ok()) RetireAll(**set, "unloaded by request");
    }
  }
  FreeUnleased();
  if (!command.done) return;
  if (!status.ok()) {
    command.done(status);
  } else {
    command.done(StatusOf(name));
  }
}

std::vector<std::string> ModelRepository::FolderNames() const {
  absl::StatusOr<std::vector<std::string>> names =
      ListSubfolders(options_.root);
  if (!names.ok()) return {};
  std::vector<std::string> valid;
  for (std::string& name : *names) {
    if (model::ValidateModelName(name).ok()) valid.push_back(std::move(name));
  }
  return valid;
}

void ModelRepository::RescanAll(bool settle) {
  const std::vector<std::string> names = FolderNames();
  std::set<std::string> on_disk(names.begin(), names.end());
  for (const std::string& name : names) {
    {
      absl::MutexLock lock(&mu_);
      if (unloaded_by_request_.count(name) > 0) continue;
    }
    // Failures are logged and counted by the scan; the rest goes on.
    ScanModel(name, settle).IgnoreError();
  }
  for (ModelSet* set : models_.All()) {
    if (on_disk.count(set->name()) == 0) {
      RetireAll(*set, "its folder was removed from the repository");
      sources_.erase(set->name());
    }
  }
  FreeUnleased();
}

absl::Status ModelRepository::ScanModel(const std::string& name, bool settle) {
  const fs::path dir = options_.root / name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    absl::StatusOr<ModelSet*> set = models_.Find(name);
    if (set.ok()) RetireAll(**set, "its folder was removed");
    sources_.erase(name);
    return absl::NotFoundError(absl::StrCat("model: no model folder \"", name,
                                            "\" in ", options_.root.string()));
  }
  absl::StatusOr<std::vector<model::VersionSource>> sources =
      model::ListModelVersions(dir);
  {
    absl::MutexLock lock(&mu_);
    if (sources.ok()) {
      folder_errors_.erase(name);
    } else {
      const bool again = folder_errors_[name] == sources.status().message();
      folder_errors_[name] = std::string(sources.status().message());
      // A poll sees the same broken folder again and again: say it once.
      if (again && settle) return sources.status();
    }
  }
  if (!sources.ok()) {
    Log("model ", name,
        ": cannot read its folder: ", sources.status().message(),
        "; what it serves keeps serving");
    if (metrics_ != nullptr) metrics_->ModelLoadDone(name, "", false);
    return sources.status();
  }
  ModelSet& set = models_.GetOrAdd(name);
  std::map<std::string, Source>& known = sources_[name];
  absl::Status first_failure;
  std::set<std::string> selected;
  bool all_ready = true;
  std::set<std::string> listed;
  for (const model::VersionSource& source : *sources) {
    listed.insert(source.folder_version);
    Source& k = known[source.folder_version];
    const std::string fingerprint = model::FolderFingerprint(source.dir);
    // Served as read: unless it was unloaded since.
    const bool current = !k.loaded.empty() && fingerprint == k.loaded &&
                         set.Find(k.version) != nullptr;
    // Polls do not try again what failed as it is; a request does.
    const bool failed_before =
        settle && !k.failed.empty() && fingerprint == k.failed;
    const bool settling = settle && fingerprint != k.seen;
    k.seen = fingerprint;
    if (!current && !failed_before && !settling) {
      absl::Status loaded = LoadSource(set, source, k, fingerprint);
      if (!loaded.ok() && first_failure.ok()) first_failure = loaded;
    }
    const std::string version =
        k.version.empty() ? source.folder_version : k.version;
    selected.insert(version);
    if (set.Find(version) == nullptr) all_ready = false;
  }
  // Versions whose folder went away are tried afresh if they come back.
  for (auto it = known.begin(); it != known.end();) {
    if (listed.count(it->first) == 0) {
      set.Forget(it->second.version.empty() ? it->first : it->second.version);
      it = known.erase(it);
    } else {
      ++it;
    }
  }
  // What the policy no longer selects goes once what it selects serves:
  // until then (a version still copied, or failed), the old one serves.
  if (all_ready) {
    for (const VersionInfo& v : set.Versions()) {
      if (v.state == VersionState::kReady && selected.count(v.version) == 0) {
        Retire(set, v.version, "no longer selected by the version policy");
      }
    }
  }
  if (on_serving_) on_serving_(name, set.ReadyCount() > 0);
  return first_failure;
}

absl::Status ModelRepository::LoadSource(ModelSet& set,
                                         const model::VersionSource& source,
                                         Source& known,
                                         const std::string& fingerprint) {
  const absl::Time start = absl::Now();
  std::string version = ShownVersion(source);
  absl::Status status;
  absl::StatusOr<model::Model> model =
      model::LoadVersionSource(source, set.name());
  if (model.ok()) {
    version = model->config.version;
    set.SetLoading(version, model->config);
    NoteState(set, version);
    if (ModelLease held = set.Find(version, /*for_session=*/true);
        held != nullptr &&
        held->config().state_size() != model->config.state_size()) {
      status = absl::FailedPreconditionError(absl::StrCat(
          "it changes the state size of a loaded version from ",
          held->config().state_size(), " to ", model->config.state_size(),
          ", which its sessions cannot carry over; publish it as a new "
          "version"));
    } else {
      absl::StatusOr<ModelLease> runtime = make_runtime_(*model);
      status = runtime.status();
      if (runtime.ok()) {
        ModelLease replaced = set.Publish(*std::move(runtime));
        if (replaced != nullptr) retired_.push_back(std::move(replaced));
      }
    }
  } else {
    status = model.status();
  }
  if (metrics_ != nullptr) {
    metrics_->ModelLoadDone(set.name(), version, status.ok());
  }
  if (!status.ok()) {
    known.failed = fingerprint;
    set.SetFailed(version, std::string(status.message()));
    NoteState(set, version);
    Log("model ", set.name(), " version ", version,
        " failed to load: ", status.message(),
        "; ready versions: ", set.ReadyList());
    return absl::FailedPreconditionError(absl::StrCat(
        "version ", version, " of model ", set.name(), " failed to load: ",
        status.message(), "; ready versions: ", set.ReadyList()));
  }
  known.loaded = fingerprint;
  known.failed.clear();
  known.version = version;
  NoteState(set, version);
  Log("model ", set.name(), " version ", version, " loaded and warmed up in ",
      absl::FormatDuration(absl::Now() - start));
  return absl::OkStatus();
}

void ModelRepository::Retire(ModelSet& set, const std::string& version,
                             const std::string& reason) {
  absl::StatusOr<int64_t> sessions =
      sessions_ == nullptr ? 0 : sessions_->CountOn(set.name(), version);
  // A store that does not answer may hold sessions: drain until it does.
  ModelLease runtime = set.Retire(version, reason, sessions.value_or(1));
  if (runtime != nullptr) retired_.push_back(std::move(runtime));
  NoteState(set, version);
  Log("model ", set.name(), " version ", version, " ", reason, ": ",
      runtime == nullptr && sessions.value_or(1) > 0
          ? absl::StrCat("draining, ", sessions.value_or(1), " session(s)")
          : std::string("unloaded"));
  if (on_serving_) on_serving_(set.name(), set.ReadyCount() > 0);
}

void ModelRepository::RetireAll(ModelSet& set, const std::string& reason) {
  for (const VersionInfo& v : set.Versions()) {
    if (v.state == VersionState::kReady) Retire(set, v.version, reason);
  }
}

void ModelRepository::CheckDraining() {
  for (ModelSet* set : models_.All()) {
    // Names only: a copy of a version's lease would count as a call on it.
    std::vector<std::string> draining;
    for (const VersionInfo& v : set->Versions()) {
      if (v.state == VersionState::kDraining) draining.push_back(v.version);
    }
    if (draining.empty()) continue;
    // One pass over the store for all of the model's draining versions.
    absl::StatusOr<std::map<std::string, int64_t>> counts =
        sessions_ == nullptr ? std::map<std::string, int64_t>()
                             : sessions_->CountByVersion(set->name());
    if (!counts.ok()) continue;
    for (const std::string& version : draining) {
      auto counted = counts->find(version);
      const int64_t sessions = counted == counts->end() ? 0 : counted->second;
      ModelLease runtime = set->UpdateDraining(version, sessions);
      if (runtime != nullptr) {
        retired_.push_back(std::move(runtime));
        Log("model ", set->name(), " version ", version, " drained: unloaded");
      }
      NoteState(*set, version);
    }
  }
  FreeUnleased();
}

void ModelRepository::FreeUnleased() {
  for (auto it = retired_.begin(); it != retired_.end();) {
    if (it->use_count() > 1) {
      ++it;
      continue;
    }
    const std::string name = (*it)->config().name;
    const std::string version = (*it)->config().version;
    // Destroyed here, on this thread: it waits for its running batches.
    it = retired_.erase(it);
    absl::StatusOr<ModelSet*> set = models_.Find(name);
    const bool held = set.ok() && (*set)->Find(version, true) != nullptr;
    if (!held && metrics_ != nullptr) {
      metrics_->RemoveModelVersion(name, version);
    }
  }
}

void ModelRepository::NoteState(const ModelSet& set,
                                const std::string& version) {
  if (metrics_ == nullptr) return;
  for (const VersionInfo& v : set.Versions()) {
    if (v.version != version) continue;
    metrics_->SetModelVersionState(set.name(), version,
                                   VersionStateName(v.state));
    if (v.state == VersionState::kDraining) {
      metrics_->SetDrainingSessions(set.name(), version, v.sessions);
    }
  }
}

ModelStatus ModelRepository::StatusOf(const std::string& name) const {
  ModelStatus status;
  status.name = name;
  absl::StatusOr<ModelSet*> set = models_.Find(name);
  if (set.ok()) status.versions = (*set)->Versions();
  absl::MutexLock lock(&mu_);
  status.unloaded_by_request = unloaded_by_request_.count(name) > 0;
  auto error = folder_errors_.find(name);
  if (error != folder_errors_.end()) status.error = error->second;
  return status;
}

std::vector<ModelStatus> ModelRepository::Index() const {
  std::set<std::string> names;
  if (!options_.root.empty()) {
    for (std::string& name : FolderNames()) names.insert(std::move(name));
  }
  for (const ModelSet* set : models_.All()) names.insert(set->name());
  std::vector<ModelStatus> index;
  for (const std::string& name : names) index.push_back(StatusOf(name));
  return index;
}

void ModelRepository::StopCommitting() {
  for (const ModelSet* set : models_.All()) {
    for (const VersionInfo& v : set->Versions()) {
      if (v.runtime != nullptr) v.runtime->StopCommitting();
    }
  }
  for (const ModelLease& runtime : retired_) runtime->StopCommitting();
}

}  // namespace rnnserve::service
