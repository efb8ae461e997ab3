// The versions of one model the server holds, each in a state of its life
// (loading, ready, draining, unloaded, failed), and the models by name.
//
// Calls find a version here and hold it by a lease (a shared pointer to its
// runtime) until they finish: a version taken out of service is freed only
// once no call holds it, by the one thread that changes the set (the model
// repository), never by a call.
//
// Thread safety: every method is thread-safe. Lookups take a reader lock
// and copy one pointer.
#ifndef RNNSERVE_SERVER_SERVICE_MODEL_SET_H_
#define RNNSERVE_SERVER_SERVICE_MODEL_SET_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/model/config.h"
#include "server/runtime/model_runtime.h"

namespace rnnserve::service {

// A call's hold on a version: it stays alive while the call runs.
using ModelLease = std::shared_ptr<runtime::ModelRuntime>;

enum class VersionState { kLoading, kReady, kDraining, kUnloaded, kFailed };

// "loading", "ready", "draining", "unloaded", "failed".
std::string_view VersionStateName(VersionState state);

// A version as it is now.
struct VersionInfo {
  std::string version;
  VersionState state = VersionState::kLoading;
  // Draining: the sessions still on it, as last counted.
  int64_t sessions = 0;
  // Failed: why; unloaded: why; ready: why its last reload failed, if it
  // did (the loaded one kept serving).
  std::string reason;
  // Its configuration once read (not for a version that failed before).
  std::optional<model::ModelConfig> config;
  // Ready and draining versions: the runtime; null otherwise.
  ModelLease runtime;
};

class ModelSet {
 public:
  explicit ModelSet(std::string name) : name_(std::move(name)) {}
  ModelSet(const ModelSet&) = delete;
  ModelSet& operator=(const ModelSet&) = delete;

  const std::string& name() const { return name_; }

  // The newest ready version, which answers calls that name none; null
  // when no version is ready.
  ModelLease Newest() const;
  // Ready version `version`; with `for_session`, a draining one too (it
  // serves the sessions that run on it). Null otherwise.
  ModelLease Find(std::string_view version, bool for_session = false) const;
  // Every version held, oldest first.
  std::vector<VersionInfo> Versions() const;
  // "1, 2": the ready versions, for messages.
  std::string ReadyList() const;
  int ReadyCount() const;

  // The model repository's side: the one thread that changes the set.

  // Version `version` is being read (or read again, while its loaded one
  // serves on).
  void SetLoading(const std::string& version,
                  const std::optional<model::ModelConfig>& config);
  // `runtime` serves from now on as its version; returns the runtime of
  // that version it replaces (null if none), to be freed once unleased.
  ModelLease Publish(ModelLease runtime);
  // The load of `version` failed: a loaded one stays ready, with `reason`;
  // else the version is failed.
  void SetFailed(const std::string& version, const std::string& reason);
  // Takes `version` out of service: draining while `sessions` > 0, else
  // unloaded (its runtime returned, to be freed once unleased).
  ModelLease Retire(const std::string& version, const std::string& reason,
                    int64_t sessions);
  // A draining version's sessions were counted again: with none left and
  // no call holding it, it becomes unloaded and its runtime is returned
  // (the caller frees it); else null.
  ModelLease UpdateDraining(const std::string& version, int64_t sessions);
  // Forgets the record of a version that was tried and failed, when its
  // folder is gone.
  void Forget(const std::string& version);

 private:
  // The order of versions: no number first, then by number, then by name.
  static bool Before(const std::string& a, const std::string& b);
  VersionInfo* FindLocked(std::string_view version)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  VersionInfo& EntryLocked(const std::string& version)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps at most kKeptRecords unloaded and failed records.
  void TrimLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks *v unloaded, moves its runtime out and trims the records (which
  // may drop *v's). Returns the runtime, for the caller to free outside the
  // lock. Ends Retire and UpdateDraining.
  ModelLease UnloadLocked(VersionInfo* v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string name_;
  mutable absl::Mutex mu_;
  std::vector<VersionInfo> entries_ ABSL_GUARDED_BY(mu_);  // In version order.
};

// Every model by name. A model once added stays (with no version ready
// when all are unloaded), so that a ModelSet* found stays valid.
class ModelSets {
 public:
  // The model called `name`: NOT_FOUND (naming the models with a ready
  // version) when there is none, INVALID_ARGUMENT when the name is empty.
  absl::StatusOr<ModelSet*> Find(const std::string& name) const;
  // The model called `name`, added if new.
  ModelSet& GetOrAdd(const std::string& name);
  // Every model, by name.
  std::vector<ModelSet*> All() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<ModelSet>> sets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_MODEL_SET_H_
