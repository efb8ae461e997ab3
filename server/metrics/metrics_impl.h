// The state behind Metrics, shared by its files: metrics.cc (construction,
// serving /metrics, server-wide series), model_families.cc (the series of
// model versions) and store_families.cc (the session store's series).
// Private to server/metrics; thread safety as metrics.h describes.
#ifndef RNNSERVE_SERVER_METRICS_METRICS_IMPL_H_
#define RNNSERVE_SERVER_METRICS_METRICS_IMPL_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/metrics/metrics.h"
#include "server/metrics/process_collector.h"

namespace rnnserve::metrics {

// Registers a family of type T (Counter, Gauge or Histogram) in `registry`.
template <typename T>
prometheus::Family<T>& Build(prometheus::Registry& registry,
                             const std::string& name, const std::string& help) {
  if constexpr (std::is_same_v<T, prometheus::Counter>) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
  } else if constexpr (std::is_same_v<T, prometheus::Gauge>) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
  } else {
    return prometheus::BuildHistogram().Name(name).Help(help).Register(
        registry);
  }
}

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry =
      std::make_shared<prometheus::Registry>();
  std::shared_ptr<ProcessCollector> process =
      std::make_shared<ProcessCollector>();
  prometheus::Gauge* sessions_max = nullptr;
  std::map<std::string, prometheus::Counter*> auth_refused;

  // The session store.
  prometheus::Family<prometheus::Gauge>* store_up_family = nullptr;
  std::atomic<prometheus::Gauge*> store_up{nullptr};
  prometheus::Counter* store_round_trips = nullptr;
  prometheus::Counter* store_takeovers = nullptr;
  prometheus::Counter* store_replays = nullptr;
  prometheus::Gauge* store_sessions = nullptr;
  // By operation: attach, commit, probe.
  std::map<std::string, prometheus::Histogram*, std::less<>> store_latency;
  std::map<std::string, prometheus::Counter*, std::less<>> store_errors;

  // The families of a model version's series; each version adds its
  // children and removes them when it goes. Set by the constructor.
  prometheus::Family<prometheus::Gauge>* model_info = nullptr;
  prometheus::Family<prometheus::Counter>* requests = nullptr;
  prometheus::Family<prometheus::Histogram>* latency = nullptr;
  prometheus::Family<prometheus::Histogram>* queue_wait = nullptr;
  prometheus::Family<prometheus::Histogram>* compute = nullptr;
  prometheus::Family<prometheus::Histogram>* batch_size = nullptr;
  prometheus::Family<prometheus::Gauge>* queue_depth = nullptr;
  prometheus::Family<prometheus::Gauge>* queue_capacity = nullptr;
  prometheus::Family<prometheus::Counter>* sequences = nullptr;
  prometheus::Family<prometheus::Counter>* steps = nullptr;
  prometheus::Family<prometheus::Gauge>* sessions_active = nullptr;
  prometheus::Family<prometheus::Counter>* sessions_created = nullptr;
  prometheus::Family<prometheus::Counter>* sessions_resumed = nullptr;
  prometheus::Family<prometheus::Counter>* sessions_expired = nullptr;
  prometheus::Family<prometheus::Counter>* sessions_refused = nullptr;
  prometheus::Family<prometheus::Counter>* sessions_ended = nullptr;
  prometheus::Family<prometheus::Gauge>* draining_sessions = nullptr;
  // Kept when a version goes: its loads and its last state.
  prometheus::Family<prometheus::Counter>* loads = nullptr;
  prometheus::Family<prometheus::Gauge>* version_state = nullptr;

  // The current state series of a version, and its state.
  struct State {
    std::string state;
    prometheus::Gauge* gauge = nullptr;
  };

  // Guards the maps of versions: a reader records a session event, the
  // writers add and remove versions (and their children in the families,
  // which take their own locks).
  absl::Mutex versions_mu;
  // By model, then version.
  std::map<std::string, std::map<std::string, std::unique_ptr<ModelMetrics>>>
      versions ABSL_GUARDED_BY(versions_mu);
  std::map<std::pair<std::string, std::string>, State> states
      ABSL_GUARDED_BY(versions_mu);

  // Makes every series of `config`'s version.
  std::unique_ptr<ModelMetrics> MakeVersion(const model::ModelConfig& config);
  // Removes every series of `m` from its family.
  void RemoveVersion(ModelMetrics& m);
  // The series a session event of `version` counts in (see the observer
  // methods), or null.
  ModelMetrics* SessionVersion(const std::string& model,
                               const std::string& version)
      ABSL_SHARED_LOCKS_REQUIRED(versions_mu);
  // Runs `record` on the series a session event of `version` counts in,
  // under the reader lock: RemoveModelVersion cannot free them meanwhile.
  template <typename F>
  void RecordSession(const std::string& model, const std::string& version,
                     F record) ABSL_LOCKS_EXCLUDED(versions_mu) {
    absl::ReaderMutexLock lock(&versions_mu);
    if (ModelMetrics* m = SessionVersion(model, version)) record(*m);
  }

  absl::Mutex mu;
  std::string host ABSL_GUARDED_BY(mu);  // Where the exposer is reached.
  int port ABSL_GUARDED_BY(mu) = 0;
  // Last, so that it stops serving before anything it reads goes.
  std::unique_ptr<prometheus::Exposer> exposer ABSL_GUARDED_BY(mu);
};

}  // namespace rnnserve::metrics

#endif  // RNNSERVE_SERVER_METRICS_METRICS_IMPL_H_
