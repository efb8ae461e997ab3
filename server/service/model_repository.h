// The model repository while the server serves: loads, reloads and unloads
// model versions as the folders on disk and their version policies say, on
// request (SIGHUP, the Repository service) or by polling, and frees
// versions taken out of service once no call and no session holds them.
//
// One thread of its own does every change, so that loads never race; the
// models it changes (ModelSets) are read by calls meanwhile. A version is
// read and warmed up before it is published; until then, and when its load
// fails, what was published keeps serving.
//
// Thread safety: thread-safe. Lifetime: owned by the Server; the ModelSets,
// session store and metrics it is given must outlive it.
#ifndef RNNSERVE_SERVER_SERVICE_MODEL_REPOSITORY_H_
#define RNNSERVE_SERVER_SERVICE_MODEL_REPOSITORY_H_

#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/metrics/metrics.h"
#include "server/model/model.h"
#include "server/model/versions.h"
#include "server/service/model_set.h"
#include "server/sessions/session_store.h"

namespace rnnserve::service {

struct RepositoryOptions {
  // The folder of model folders; empty: the server serves the models it
  // was given, and nothing is rescanned.
  std::filesystem::path root;
  // Rescan every poll_interval; a new or changed version is loaded once
  // its files stayed unchanged from one scan to the next.
  bool poll = false;
  absl::Duration poll_interval = absl::Seconds(5);
  // How often draining versions count their sessions, and versions out of
  // service are freed once no call holds them.
  absl::Duration drain_check_interval = absl::Seconds(1);
};

// One model as the repository reports it.
struct ModelStatus {
  std::string name;
  std::vector<VersionInfo> versions;  // Oldest first.
  bool unloaded_by_request = false;
  // Why the model folder itself could not be read at the last scan.
  std::string error;
};

class ModelRepository {
 public:
  // Makes a version's runtime, warmed up, on the calling thread.
  using MakeRuntime =
      std::function<absl::StatusOr<ModelLease>(const model::Model&)>;
  // Told whether a model has a ready version after each change.
  using OnServing = std::function<void(const std::string& model, bool)>;
  using Done = std::function<void(absl::StatusOr<ModelStatus>)>;

  ModelRepository(RepositoryOptions options, ModelSets& models,
                  MakeRuntime make_runtime, sessions::SessionStore* sessions,
                  metrics::Metrics* metrics, OnServing on_serving);
  // Stops the thread.
  ~ModelRepository();
  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

  // Before Start, on the caller's thread: loads every model folder of the
  // root; any failure is the error (the server does not start with a
  // model missing).
  absl::Status LoadAll();
  // Before Start: serves `model`, given rather than read from a folder.
  absl::Status Add(const model::Model& model);

  // Starts the repository's thread; `on_thread_start` runs on it first
  // (it warms up versions, like a compute thread).
  void Start(std::function<void()> on_thread_start);
  // Stops the thread after the change it is making. Idempotent.
  void Stop();

  // Rescans every model folder soon, without waiting (SIGHUP).
  void RequestRescan();
  // Rescans the folder of `model` now and ends an UnloadModel of it;
  // `done` gets the model's status, or why a version failed to load, on
  // the repository's thread.
  void LoadModel(const std::string& model, Done done);
  // Takes every version of `model` out of service (draining while sessions
  // run on one), and keeps it so until LoadModel.
  void UnloadModel(const std::string& model, Done done);
  // Every model folder and every model held.
  std::vector<ModelStatus> Index() const;

  // Commits what every version still has to commit (shutdown, after the
  // scheduler stopped).
  void StopCommitting();

 private:
  struct Command {
    enum class Kind { kRescan, kLoad, kUnload } kind;
    std::string model;
    Done done;  // May be empty.
  };
  // What the repository knows of one version folder (or flat model).
  struct Source {
    std::string version;  // The version it loaded as.
    std::string loaded;   // Fingerprint of what serves.
    std::string failed;   // Fingerprint of what failed to load.
    std::string seen;     // Fingerprint at the last poll.
  };

  void Loop();
  void Submit(Command command);
  // Applies `command`; on the repository's thread.
  void Run(const Command& command);
  void RescanAll(bool settle);
  // Loads what is new or changed in the folder of `name` and unloads what
  // its policy no longer selects. With `settle`, only files unchanged
  // since the last scan are loaded. Returns the first failure.
  absl::Status ScanModel(const std::string& name, bool settle);
  absl::Status LoadSource(ModelSet& set, const model::VersionSource& source,
                          Source& known, const std::string& fingerprint);
  void Retire(ModelSet& set, const std::string& version,
              const std::string& reason);
  void RetireAll(ModelSet& set, const std::string& reason);
  // Counts the sessions of draining versions; frees what nobody holds.
  void CheckDraining();
  void FreeUnleased();
  void NoteState(const ModelSet& set, const std::string& version);
  ModelStatus StatusOf(const std::string& name) const;
  std::vector<std::string> FolderNames() const;

  const RepositoryOptions options_;
  ModelSets& models_;
  const MakeRuntime make_runtime_;
  sessions::SessionStore* const sessions_;
  metrics::Metrics* const metrics_;
  const OnServing on_serving_;

  // The repository thread's own: by model, then by version folder ("" for
  // a flat model folder).
  std::map<std::string, std::map<std::string, Source>> sources_;
  // Runtimes out of service, freed once no call holds them.
  std::vector<ModelLease> retired_;

  mutable absl::Mutex mu_;
  std::deque<Command> commands_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::set<std::string> unloaded_by_request_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> folder_errors_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_MODEL_REPOSITORY_H_
