// What the server tells Prometheus. Only this room includes prometheus-cpp;
// other rooms record through the plain methods below.
#ifndef RNNSERVE_SERVER_METRICS_METRICS_H_
#define RNNSERVE_SERVER_METRICS_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/model/model.h"
#include "server/sessions/session_observer.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace rnnserve::metrics {

// The model-serving RPCs, as the `method` label spells them.
// The RPC a series counts: rnnserve.v1's three, and the Open Inference
// Protocol's ModelInfer.
enum class Method {
  kClassify = 0,
  kRegress = 1,
  kRegressChunk = 2,
  kModelInfer = 3
};
inline constexpr int kNumMethods = 4;
// absl::StatusCode values 0..16, the gRPC codes, as the `code` label.
inline constexpr int kNumCodes = 17;

// One model version's series, made when the version is added
// (Metrics::AddModelVersion) so that recording never registers nor
// allocates anything. Counters and gauges are atomics; a histogram child
// takes its own short mutex (prometheus-cpp keeps its buckets and sum
// consistent that way). Thread-safe. Lives until Metrics::RemoveModelVersion
// of its version, or the Metrics' destruction.
class ModelMetrics {
 public:
  // A finished call (for Regress: a finished chunk), by its status code.
  void RequestDone(Method method, absl::StatusCode code,
                   absl::Duration latency);
  // How long a task waited in the queue before compute.
  void QueueWait(Method method, absl::Duration wait);
  // One engine call: its batch (sequences or chunks), the time steps in it,
  // and how long the engine took.
  void BatchRan(Method method, int items, int64_t steps,
                absl::Duration compute);
  // Time steps (of all sequences or chunks) waiting in this version's queue
  // for `method` now: queued compute, the queue's main bound.
  void SetQueueDepth(Method method, int64_t steps);
  // Most steps the queue for `method` holds before refusing calls
  // (max_queued_steps); set once when the version starts, for the
  // queue-full alert.
  void SetQueueCapacity(Method method, int64_t steps);

  // `held`: the server holds its sessions itself, so that created, ended
  // and expired ones make its count of active sessions (a shared store's
  // count is rnnserve_session_store_sessions).
  void SessionCreated(bool held = true);
  void SessionResumed();
  void SessionExpired();
  void SessionRefused();
  void SessionEnded(bool held = true);

 private:
  friend class Metrics;
  ModelMetrics() = default;

  std::array<std::array<prometheus::Counter*, kNumCodes>, kNumMethods>
      requests_{};
  std::array<prometheus::Histogram*, kNumMethods> latency_{};
  std::array<prometheus::Histogram*, kNumMethods> queue_wait_{};
  std::array<prometheus::Histogram*, kNumMethods> compute_{};
  std::array<prometheus::Histogram*, kNumMethods> batch_size_{};
  std::array<prometheus::Gauge*, kNumMethods> queue_depth_{};
  std::array<prometheus::Gauge*, kNumMethods> queue_capacity_{};
  prometheus::Counter* sequences_ = nullptr;
  prometheus::Counter* steps_ = nullptr;
  prometheus::Gauge* sessions_active_ = nullptr;
  prometheus::Counter* sessions_created_ = nullptr;
  prometheus::Counter* sessions_resumed_ = nullptr;
  prometheus::Counter* sessions_expired_ = nullptr;
  prometheus::Counter* sessions_refused_ = nullptr;
  prometheus::Counter* sessions_ended_ = nullptr;
  // Set by Metrics alone (SetDrainingSessions), and the version's
  // rnnserve_model_info series: both go with the version.
  prometheus::Gauge* draining_sessions_ = nullptr;
  prometheus::Gauge* info_ = nullptr;
};

struct BuildInfo {
  std::string version;
  std::string git_commit;
};

// Every series of the server, and the HTTP endpoint that serves them.
// Series of a model carry its `model` and `version` labels; versions come and
// go while the server runs (AddModelVersion, RemoveModelVersion). Thread-safe:
// every method may run while /metrics is scraped and other versions record.
class Metrics final : public sessions::SessionObserver {
 public:
  // The states of rnnserve_model_version_state.
  static constexpr std::array<std::string_view, 5> kVersionStates = {
      "loading", "ready", "draining", "unloaded", "failed"};

  // Registers every server-wide family, and every version of `models` as
  // AddModelVersion does.
  Metrics(const BuildInfo& build,
          const std::vector<model::ModelConfig>& models);
  ~Metrics() override;

  // Registers the series of `config`'s (name, version): its
  // rnnserve_model_info series and its children of every per-version family,
  // at zero. Idempotent: an added version's series are returned as they are.
  // The result lives until RemoveModelVersion of that version.
  ModelMetrics* AddModelVersion(const model::ModelConfig& config);

  // Removes the version's series from every family (they leave /metrics)
  // and frees its ModelMetrics; nothing when it is not added. The caller
  // guarantees that nobody records into that ModelMetrics any more. Session
  // events of the version that come later are not counted. Its
  // rnnserve_model_loads_total and rnnserve_model_version_state series stay,
  // so that a version's last state and failed loads remain visible.
  void RemoveModelVersion(const std::string& model, const std::string& version);

  // The series of `version` of `model`, or null for a version not added.
  // Valid until RemoveModelVersion of it; callers on a hot path keep it.
  ModelMetrics* ForModel(const std::string& model, const std::string& version);

  // A load of `version` of `model` finished: rnnserve_model_loads_total
  // {outcome="loaded"} or {outcome="failed"}. Counted whether or not the
  // version is added; these series are never removed.
  void ModelLoadDone(const std::string& model, const std::string& version,
                     bool ok);

  // rnnserve_model_version_state{model,version,state} is 1 for `state`, one
  // of kVersionStates, and the series of the version's previous state is
  // removed: a version has one state series, whether or not it is added.
  // Any other `state` is ignored.
  void SetModelVersionState(const std::string& model,
                            const std::string& version, std::string_view state);

  // Sessions still held on a draining version
  // (rnnserve_model_version_draining_sessions); nothing for a version not
  // added.
  void SetDrainingSessions(const std::string& model, const std::string& version,
                           int64_t sessions);

  // Serves GET /metrics on `address` ("host:port"; port 0 picks one) until
  // StopServing or destruction. Returns the bound port.
  absl::StatusOr<int> Serve(const std::string& address);

  // Stops serving /metrics and returns when the HTTP server is down, within
  // milliseconds. Idempotent; the destructor calls it.
  void StopServing();

  // The text /metrics serves (Prometheus text format 0.0.4), except the
  // exposer_* scrape statistics prometheus-cpp's HTTP endpoint adds itself.
  std::string Render() const;

  // The session store's limit (max_sessions); set once at start-up, for the
  // sessions-near-limit alert.
  void SetMaxSessions(int64_t sessions);

  // A call refused for a missing or wrong bearer token, before its model is
  // known. `rpc` is the rnnserve.v1.Inference method's name ("Classify",
  // "Regress", "RegressChunk", "ListModels", "GetModel"); others are not
  // counted.
  void AuthRefused(const std::string& rpc);

  // Which session store the server uses ("memory", "redis"): the label of
  // rnnserve_session_store_up. Set once at start-up.
  void SetSessionStoreBackend(const std::string& backend);

  // sessions::SessionObserver: counts session events by model version, and
  // the store's operations, take-overs and replays for the whole server. An
  // event of a version not added (or removed already) is not counted. An
  // empty version (a session stored before versions were recorded, or a
  // session refused before its version was known) counts under the model's
  // version when exactly one is added, and is not counted otherwise.
  void OnCreated(const std::string& model, const std::string& version) override;
  void OnResumed(const std::string& model, const std::string& version) override;
  void OnExpired(const std::string& model, const std::string& version) override;
  void OnRefused(const std::string& model, const std::string& version) override;
  void OnEnded(const std::string& model, const std::string& version) override;
  void OnTakenOver(const std::string& model,
                   const std::string& version) override;
  void OnReplayed(const std::string& model,
                  const std::string& version) override;
  void OnStoreOperation(std::string_view operation, absl::Duration latency,
                        bool ok) override;
  void OnStoreState(bool up, int64_t sessions) override;

 private:
  struct Impl;
  void AddStoreFamilies(prometheus::Registry& registry);
  void AddModelFamilies(prometheus::Registry& registry);
  std::unique_ptr<Impl> impl_;
  // The session store is this process's memory (SetSessionStoreBackend).
  std::atomic<bool> sessions_held_{true};
};

// The `method` label of `method`: "Classify", "Regress", "RegressChunk",
// "ModelInfer".
const char* MethodName(Method method);

}  // namespace rnnserve::metrics

#endif  // RNNSERVE_SERVER_METRICS_METRICS_H_
