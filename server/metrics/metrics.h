// What the server tells Prometheus. Only this room includes prometheus-cpp;
// other rooms record through the plain methods below.
#ifndef RNNSERVE_SERVER_METRICS_METRICS_H_
#define RNNSERVE_SERVER_METRICS_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
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

// One model's series, made at start-up so that recording never registers
// nor allocates anything. Counters and gauges are atomics; a histogram child
// takes its own short mutex (prometheus-cpp keeps its buckets and sum
// consistent that way). Thread-safe.
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
  // Time steps (of all sequences or chunks) waiting in the model's queue
  // for `method` now: queued compute, the queue's main bound.
  void SetQueueDepth(Method method, int64_t steps);
  // Most steps the queue for `method` holds before refusing calls
  // (max_queued_steps); set once at start-up, for the queue-full alert.
  void SetQueueCapacity(Method method, int64_t steps);
  // As the two above, for a model with several versions, each with its own
  // queue: each version adds its changes, so that the series are the sums.
  void AddQueueDepth(Method method, int64_t steps);
  void AddQueueCapacity(Method method, int64_t steps);

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
};

struct BuildInfo {
  std::string version;
  std::string git_commit;
};

// Every series of the server, and the HTTP endpoint that serves them.
// Thread-safe.
class Metrics final : public sessions::SessionObserver {
 public:
  // Registers every family and child for `models` (their configs give the
  // model-info labels: one series per config, so one per version).
  Metrics(const BuildInfo& build,
          const std::vector<model::ModelConfig>& models);
  ~Metrics() override;

  // The series of `model`, or null for a model not given at construction.
  ModelMetrics* ForModel(const std::string& model);

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

  // sessions::SessionObserver: counts session events by model, and the
  // store's operations, take-overs and replays for the whole server.
  void OnCreated(const std::string& model) override;
  void OnResumed(const std::string& model) override;
  void OnExpired(const std::string& model) override;
  void OnRefused(const std::string& model) override;
  void OnEnded(const std::string& model) override;
  void OnTakenOver(const std::string& model) override;
  void OnReplayed(const std::string& model) override;
  void OnStoreOperation(std::string_view operation, absl::Duration latency,
                        bool ok) override;
  void OnStoreState(bool up, int64_t sessions) override;

 private:
  struct Impl;
  void AddStoreFamilies(prometheus::Registry& registry);
  std::unique_ptr<Impl> impl_;
  std::map<std::string, std::unique_ptr<ModelMetrics>> models_;
  // The session store is this process's memory (SetSessionStoreBackend).
  std::atomic<bool> sessions_held_{true};
};

// The `method` label of `method`: "Classify", "Regress", "RegressChunk",
// "ModelInfer".
const char* MethodName(Method method);

}  // namespace rnnserve::metrics

#endif  // RNNSERVE_SERVER_METRICS_METRICS_H_
