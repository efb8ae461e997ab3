#include "server/service/model_set.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/model/versions.h"

namespace rnnserve::service {
namespace {

// Unloaded and failed versions listed per model, newest kept.
constexpr size_t kKeptRecords = 8;

bool Held(VersionState state) {
  return state == VersionState::kReady || state == VersionState::kDraining;
}

}  // namespace

std::string_view VersionStateName(VersionState state) {
  switch (state) {
    case VersionState::kLoading:
      return "loading";
    case VersionState::kReady:
      return "ready";
    case VersionState::kDraining:
      return "draining";
    case VersionState::kUnloaded:
      return "unloaded";
    case VersionState::kFailed:
      return "failed";
  }
  return "unknown";
}

bool ModelSet::Before(const std::string& a, const std::string& b) {
  const int64_t na = model::VersionNumber(a).value_or(-1);
  const int64_t nb = model::VersionNumber(b).value_or(-1);
  return na != nb ? na < nb : a < b;
}

ModelLease ModelSet::Newest() const {
  absl::ReaderMutexLock lock(&mu_);
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->state == VersionState::kReady) return it->runtime;
  }
  return nullptr;
}

ModelLease ModelSet::Find(std::string_view version, bool for_session) const {
  absl::ReaderMutexLock lock(&mu_);
  for (const VersionInfo& v : entries_) {
    if (v.version != version) continue;
    const bool serves = v.state == VersionState::kReady ||
                        (for_session && v.state == VersionState::kDraining);
    return serves ? v.runtime : nullptr;
  }
  return nullptr;
}

std::vector<VersionInfo> ModelSet::Versions() const {
  absl::ReaderMutexLock lock(&mu_);
  return entries_;
}

std::string ModelSet::ReadyList() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> ready;
  for (const VersionInfo& v : entries_) {
    if (v.state == VersionState::kReady) ready.push_back(v.version);
  }
  return ready.empty() ? "none" : absl::StrJoin(ready, ", ");
}

int ModelSet::ReadyCount() const {
  absl::ReaderMutexLock lock(&mu_);
  return static_cast<int>(std::count_if(
      entries_.begin(), entries_.end(),
      [](const auto& v) { return v.state == VersionState::kReady; }));
}

VersionInfo* ModelSet::FindLocked(std::string_view version) {
  for (VersionInfo& v : entries_) {
    if (v.version == version) return &v;
  }
  return nullptr;
}

VersionInfo& ModelSet::EntryLocked(const std::string& version) {
  if (VersionInfo* found = FindLocked(version)) return *found;
  auto at = std::find_if(
      entries_.begin(), entries_.end(),
      [&](const VersionInfo& v) { return Before(version, v.version); });
  VersionInfo& added = *entries_.insert(at, VersionInfo());
  added.version = version;
  return added;
}

void ModelSet::TrimLocked() {
  size_t records = 0;
  for (auto it = entries_.rbegin(); it != entries_.rend();) {
    const bool record = it->state == VersionState::kUnloaded ||
                        it->state == VersionState::kFailed;
    if (record && ++records > kKeptRecords) {
      it = decltype(it)(entries_.erase(std::next(it).base()));
    } else {
      ++it;
    }
  }
}

void ModelSet::SetLoading(const std::string& version,
                          const std::optional<model::ModelConfig>& config) {
  absl::MutexLock lock(&mu_);
  VersionInfo& v = EntryLocked(version);
  // A loaded version keeps serving while its files are read again.
  if (Held(v.state)) return;
  v.state = VersionState::kLoading;
  v.reason.clear();
  v.sessions = 0;
  v.config = config;
}

ModelLease ModelSet::Publish(ModelLease runtime) {
  absl::MutexLock lock(&mu_);
  VersionInfo& v = EntryLocked(runtime->config().version);
  ModelLease replaced = Held(v.state) ? std::move(v.runtime) : nullptr;
  v.state = VersionState::kReady;
  v.reason.clear();
  v.sessions = 0;
  v.config = runtime->config();
  v.runtime = std::move(runtime);
  return replaced;
}

void ModelSet::SetFailed(const std::string& version,
                         const std::string& reason) {
  absl::MutexLock lock(&mu_);
  VersionInfo& v = EntryLocked(version);
  v.reason = reason;
  if (Held(v.state)) return;
  v.state = VersionState::kFailed;
  v.runtime = nullptr;
  TrimLocked();
}

ModelLease ModelSet::Retire(const std::string& version,
                            const std::string& reason, int64_t sessions) {
  absl::MutexLock lock(&mu_);
  VersionInfo* v = FindLocked(version);
  if (v == nullptr || !Held(v->state)) return nullptr;
  v->reason = reason;
  v->sessions = sessions;
  if (sessions > 0) {
    v->state = VersionState::kDraining;
    return nullptr;
  }
  return UnloadLocked(v);
}

ModelLease ModelSet::UpdateDraining(const std::string& version,
                                    int64_t sessions) {
  absl::MutexLock lock(&mu_);
  VersionInfo* v = FindLocked(version);
  if (v == nullptr || v->state != VersionState::kDraining) return nullptr;
  v->sessions = sessions;
  // Only this set hands out leases, under this lock: with none out, no
  // call can reach the version any more once its sessions are gone.
  if (sessions > 0 || v->runtime.use_count() > 1) return nullptr;
  return UnloadLocked(v);
}

ModelLease ModelSet::UnloadLocked(VersionInfo* v) {
  v->state = VersionState::kUnloaded;
  ModelLease runtime = std::move(v->runtime);
  TrimLocked();  // May drop *v's record: the runtime is out already.
  return runtime;
}

void ModelSet::Forget(const std::string& version) {
  absl::MutexLock lock(&mu_);
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const VersionInfo& v) {
                                  return v.version == version &&
                                         v.state == VersionState::kFailed;
                                }),
                 entries_.end());
}

absl::StatusOr<ModelSet*> ModelSets::Find(const std::string& name) const {
  if (name.empty()) {
    return absl::InvalidArgumentError("model: a model name is required");
  }
  absl::ReaderMutexLock lock(&mu_);
  auto it = sets_.find(name);
  if (it != sets_.end()) return it->second.get();
  std::vector<std::string> names;
  for (const auto& [n, set] : sets_) {
    if (set->ReadyCount() > 0) names.push_back(n);
  }
  // The name is the caller's own input; quote only a bounded part of it.
  return absl::NotFoundError(
      absl::StrCat("model: no model named \"", name.substr(0, 128),
                   "\"; loaded models: ", absl::StrJoin(names, ", ")));
}

ModelSet& ModelSets::GetOrAdd(const std::string& name) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<ModelSet>& set = sets_[name];
  if (set == nullptr) set = std::make_unique<ModelSet>(name);
  return *set;
}

std::vector<ModelSet*> ModelSets::All() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<ModelSet*> all;
  for (const auto& [name, set] : sets_) all.push_back(set.get());
  return all;
}

}  // namespace rnnserve::service
