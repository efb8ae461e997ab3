#include "server/metrics/metrics.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <functional>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "server/metrics/process_collector.h"

namespace rnnserve::metrics {
namespace {

// gRPC's names of absl::StatusCode 0..16, in code order.
constexpr std::array<const char*, kNumCodes> kCodeNames = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

constexpr std::array<Method, kNumMethods> kMethods = {
    Method::kClassify, Method::kRegress, Method::kRegressChunk,
    Method::kModelInfer};

// From 50 µs (a small batch on one core) to 10 s (far past any deadline a
// client should set), roughly 1-2.5-5 per decade.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
  return *buckets;
}

// Powers of two, 1 to 1024: batch sizes are set in powers of two, and the
// first bucket isolates batches of one (no batching happened).
const prometheus::Histogram::BucketBoundaries& BatchBuckets() {
  static const auto* buckets = [] {
    auto* b = new prometheus::Histogram::BucketBoundaries;
    for (int size = 1; size <= 1024; size *= 2) b->push_back(size);
    return b;
  }();
  return *buckets;
}

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

// The host to connect to for reaching a listener bound to `address`
// ("host:port", "[v6]:port", or a port alone): the bound host, or loopback
// for a wildcard.
std::string LocalHost(const std::string& address) {
  const size_t colon = address.rfind(':');
  std::string host =
      colon == std::string::npos ? std::string() : address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    return host == "::" ? "::1" : host;
  }
  if (host.empty() || host == "0.0.0.0" || host == "+") return "127.0.0.1";
  return host;
}

// Opens and at once closes a TCP connection to host:port; failures are
// ignored (the listener may be gone already).
void Poke(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) !=
      0) {
    return;
  }
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    // Bounds connect(): the listener is on this machine.
    timeval timeout{0, 100 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    (void)connect(fd, found->ai_addr, found->ai_addrlen);
    close(fd);
  }
  freeaddrinfo(found);
}

}  // namespace

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

std::unique_ptr<ModelMetrics> Metrics::Impl::MakeVersion(
    const model::ModelConfig& config) {
  std::unique_ptr<ModelMetrics> m(new ModelMetrics());  // Private constructor.
  const prometheus::Labels version = {{"model", config.name},
                                      {"version", config.version}};
  m->info_ = &model_info->Add(
      {{"model", config.name},
       {"version", config.version},
       {"cell", std::string(model::CellName(config.cell))},
       {"task", std::string(model::TaskName(config.task))},
       {"input_size", std::to_string(config.input_size)},
       {"hidden_size", std::to_string(config.hidden_size)},
       {"num_layers", std::to_string(config.num_layers)},
       {"bidirectional", config.bidirectional ? "true" : "false"},
       {"output_size", std::to_string(config.output_size)}});
  m->info_->Set(1);
  // Every method for every version, even the one its task refuses: those
  // refusals (FAILED_PRECONDITION) are requests too.
  for (Method method : kMethods) {
    const int i = static_cast<int>(method);
    prometheus::Labels labels = version;
    labels.emplace("method", MethodName(method));
    for (int code = 0; code < kNumCodes; ++code) {
      prometheus::Labels with_code = labels;
      with_code.emplace("code", kCodeNames[code]);
      m->requests_[i][code] = &requests->Add(with_code);
    }
    m->latency_[i] = &latency->Add(labels, LatencyBuckets());
    m->queue_wait_[i] = &queue_wait->Add(labels, LatencyBuckets());
    m->compute_[i] = &compute->Add(labels, LatencyBuckets());
    m->batch_size_[i] = &batch_size->Add(labels, BatchBuckets());
    m->queue_depth_[i] = &queue_depth->Add(labels);
    m->queue_capacity_[i] = &queue_capacity->Add(labels);
  }
  m->sequences_ = &sequences->Add(version);
  m->steps_ = &steps->Add(version);
  m->sessions_active_ = &sessions_active->Add(version);
  m->sessions_created_ = &sessions_created->Add(version);
  m->sessions_resumed_ = &sessions_resumed->Add(version);
  m->sessions_expired_ = &sessions_expired->Add(version);
  m->sessions_refused_ = &sessions_refused->Add(version);
  m->sessions_ended_ = &sessions_ended->Add(version);
  m->draining_sessions_ = &draining_sessions->Add(version);
  return m;
}

void Metrics::Impl::RemoveVersion(ModelMetrics& m) {
  model_info->Remove(m.info_);
  for (int i = 0; i < kNumMethods; ++i) {
    for (prometheus::Counter* counter : m.requests_[i]) {
      requests->Remove(counter);
    }
    latency->Remove(m.latency_[i]);
    queue_wait->Remove(m.queue_wait_[i]);
    compute->Remove(m.compute_[i]);
    batch_size->Remove(m.batch_size_[i]);
    queue_depth->Remove(m.queue_depth_[i]);
    queue_capacity->Remove(m.queue_capacity_[i]);
  }
  sequences->Remove(m.sequences_);
  steps->Remove(m.steps_);
  sessions_active->Remove(m.sessions_active_);
  sessions_created->Remove(m.sessions_created_);
  sessions_resumed->Remove(m.sessions_resumed_);
  sessions_expired->Remove(m.sessions_expired_);
  sessions_refused->Remove(m.sessions_refused_);
  sessions_ended->Remove(m.sessions_ended_);
  draining_sessions->Remove(m.draining_sessions_);
}

ModelMetrics* Metrics::Impl::SessionVersion(const std::string& model,
                                            const std::string& version) {
  auto found = versions.find(model);
  if (found == versions.end()) return nullptr;
  const auto& of_model = found->second;
  if (version.empty()) {
    return of_model.size() == 1 ? of_model.begin()->second.get() : nullptr;
  }
  auto it = of_model.find(version);
  return it == of_model.end() ? nullptr : it->second.get();
}

Metrics::Metrics(const BuildInfo& build,
                 const std::vector<model::ModelConfig>& models)
    : impl_(std::make_unique<Impl>()) {
  using prometheus::Counter;
  using prometheus::Gauge;
  prometheus::Registry& r = *impl_->registry;

  Build<Gauge>(r, "rnnserve_build_info",
               "Always 1; the labels say which build of rnnserve runs.")
      .Add({{"version", build.version}, {"git_commit", build.git_commit}})
      .Set(1);
  impl_->sessions_max =
      &Build<Gauge>(r, "rnnserve_sessions_max",
                    "Most streaming sessions the server holds at once; "
                    "new sessions beyond it are refused.")
           .Add({});

  AddStoreFamilies(r);

  auto& auth_refused = Build<Counter>(
      r, "rnnserve_auth_refused_total",
      "Calls refused for a missing or wrong bearer token, by method.");
  // rnnserve.v1's methods, then the Open Inference Protocol's.
  for (const char* rpc : {"Classify", "Regress", "RegressChunk", "ListModels",
                          "GetModel", "ModelInfer", "ServerLive", "ServerReady",
                          "ModelReady", "ServerMetadata", "ModelMetadata"}) {
    impl_->auth_refused[rpc] = &auth_refused.Add({{"method", rpc}});
  }

  AddModelFamilies(r);
  for (const model::ModelConfig& config : models) AddModelVersion(config);
}

void Metrics::AddModelFamilies(prometheus::Registry& r) {
  using prometheus::Counter;
  using prometheus::Gauge;
  using prometheus::Histogram;
  Impl& m = *impl_;
  m.model_info = &Build<Gauge>(
      r, "rnnserve_model_info",
      "Always 1; one series per loaded model version, its shape in the "
      "labels.");
  m.requests = &Build<Counter>(
      r, "rnnserve_requests_total",
      "Finished calls (for Regress, finished chunks) by gRPC status code.");
  m.latency = &Build<Histogram>(
      r, "rnnserve_request_duration_seconds",
      "Time from a call's (or chunk's) arrival to its answer, in seconds.");
  m.queue_wait = &Build<Histogram>(
      r, "rnnserve_queue_wait_seconds",
      "Time a task waited in its model version's queue before compute, in "
      "seconds.");
  m.compute =
      &Build<Histogram>(r, "rnnserve_compute_duration_seconds",
                        "Time of one engine call on one batch, in seconds.");
  m.batch_size = &Build<Histogram>(
      r, "rnnserve_batch_size",
      "Sequences (Classify) or chunks (Regress) run in one engine call.");
  m.queue_depth =
      &Build<Gauge>(r, "rnnserve_queue_depth",
                    "Time steps (of all sequences or chunks) waiting in a "
                    "model version's queue.");
  m.queue_capacity =
      &Build<Gauge>(r, "rnnserve_queue_capacity",
                    "Most time steps a model version's queue holds "
                    "(--max-queued-steps); calls beyond it get "
                    "RESOURCE_EXHAUSTED.");
  m.sequences = &Build<Counter>(
      r, "rnnserve_sequences_total",
      "Sequences (Classify) and chunks (Regress) run by the engine.");
  m.steps = &Build<Counter>(r, "rnnserve_steps_total",
                            "Time steps run by the engine.");
  m.sessions_active = &Build<Gauge>(
      r, "rnnserve_sessions_active",
      "Streaming sessions the server holds now in its own memory "
      "(0 with a shared store: see rnnserve_session_store_sessions).");
  m.sessions_created = &Build<Counter>(r, "rnnserve_sessions_created_total",
                                       "Streaming sessions started.");
  m.sessions_resumed =
      &Build<Counter>(r, "rnnserve_sessions_resumed_total",
                      "Streaming sessions resumed by token on a new call.");
  m.sessions_expired =
      &Build<Counter>(r, "rnnserve_sessions_expired_total",
                      "Streaming sessions dropped after their idle TTL.");
  m.sessions_refused = &Build<Counter>(
      r, "rnnserve_sessions_refused_total",
      "New streaming sessions refused because the store was full.");
  m.sessions_ended =
      &Build<Counter>(r, "rnnserve_sessions_ended_total",
                      "Streaming sessions ended by their client.");
  m.draining_sessions = &Build<Gauge>(
      r, "rnnserve_model_version_draining_sessions",
      "Sessions still held on a draining model version (it is unloaded once "
      "they end or expire).");
  m.loads = &Build<Counter>(
      r, "rnnserve_model_loads_total",
      "Loads of a model version, by outcome (loaded, failed); kept after the "
      "version is gone.");
  m.version_state = &Build<Gauge>(
      r, "rnnserve_model_version_state",
      "1 for a model version's current state (loading, ready, draining, "
      "unloaded, failed); one series per version.");
}

ModelMetrics* Metrics::AddModelVersion(const model::ModelConfig& config) {
  absl::MutexLock lock(&impl_->versions_mu);
  std::unique_ptr<ModelMetrics>& slot =
      impl_->versions[config.name][config.version];
  if (slot == nullptr) slot = impl_->MakeVersion(config);
  return slot.get();
}

void Metrics::RemoveModelVersion(const std::string& model,
                                 const std::string& version) {
  std::unique_ptr<ModelMetrics> gone;
  absl::MutexLock lock(&impl_->versions_mu);
  auto found = impl_->versions.find(model);
  if (found == impl_->versions.end()) return;
  auto it = found->second.find(version);
  if (it == found->second.end()) return;
  gone = std::move(it->second);
  found->second.erase(it);
  if (found->second.empty()) impl_->versions.erase(found);
  // Under the lock: a session event that found the version must not
  // record into a removed child.
  impl_->RemoveVersion(*gone);
}

ModelMetrics* Metrics::ForModel(const std::string& model,
                                const std::string& version) {
  absl::ReaderMutexLock lock(&impl_->versions_mu);
  auto found = impl_->versions.find(model);
  if (found == impl_->versions.end()) return nullptr;
  auto it = found->second.find(version);
  return it == found->second.end() ? nullptr : it->second.get();
}

void Metrics::ModelLoadDone(const std::string& model,
                            const std::string& version, bool ok) {
  // Family::Add gives the existing child for labels it has.
  impl_->loads
      ->Add({{"model", model},
             {"version", version},
             {"outcome", ok ? "loaded" : "failed"}})
      .Increment();
}

void Metrics::SetModelVersionState(const std::string& model,
                                   const std::string& version,
                                   std::string_view state) {
  if (std::find(kVersionStates.begin(), kVersionStates.end(), state) ==
      kVersionStates.end()) {
    return;
  }
  absl::MutexLock lock(&impl_->versions_mu);
  Impl::State& current = impl_->states[{model, version}];
  if (current.gauge != nullptr && current.state == state) return;
  prometheus::Gauge& gauge = impl_->version_state->Add(
      {{"model", model}, {"version", version}, {"state", std::string(state)}});
  gauge.Set(1);
  if (current.gauge != nullptr) impl_->version_state->Remove(current.gauge);
  current.state = std::string(state);
  current.gauge = &gauge;
}

void Metrics::SetDrainingSessions(const std::string& model,
                                  const std::string& version,
                                  int64_t sessions) {
  absl::ReaderMutexLock lock(&impl_->versions_mu);
  auto found = impl_->versions.find(model);
  if (found == impl_->versions.end()) return;
  auto it = found->second.find(version);
  if (it == found->second.end()) return;
  it->second->draining_sessions_->Set(static_cast<double>(sessions));
}

Metrics::~Metrics() { StopServing(); }

void Metrics::StopServing() {
  std::unique_ptr<prometheus::Exposer> exposer;
  std::string host;
  int port = 0;
  {
    absl::MutexLock lock(&impl_->mu);
    exposer = std::move(impl_->exposer);
    host = impl_->host;
    port = impl_->port;
  }
  if (exposer == nullptr) return;
  // civetweb's listening thread checks its stop flag only between polls
  // of its sockets, which last up to 2 s each: a process exiting would wait
  // that long. A connection ends the poll at once, so while the exposer
  // stops on another thread, this one connects every few milliseconds.
  absl::Notification stopped;
  std::thread stopper([&] {
    exposer.reset();
    stopped.Notify();
  });
  while (!stopped.WaitForNotificationWithTimeout(absl::Milliseconds(5))) {
    Poke(host, port);
  }
  stopper.join();
}

absl::StatusOr<int> Metrics::Serve(const std::string& address) {
  absl::MutexLock lock(&impl_->mu);
  if (impl_->exposer != nullptr) {
    return absl::FailedPreconditionError("metrics: already serving");
  }
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot serve on --metrics-address \"", address,
                     "\": ", e.what()));
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::InternalError(
        absl::StrCat("metrics: no listening port for \"", address, "\""));
  }
  exposer->RegisterCollectable(impl_->registry);
  exposer->RegisterCollectable(impl_->process);
  impl_->exposer = std::move(exposer);
  impl_->host = LocalHost(address);
  impl_->port = ports.front();
  return ports.front();
}

std::string Metrics::Render() const {
  std::vector<prometheus::MetricFamily> families = impl_->registry->Collect();
  std::vector<prometheus::MetricFamily> process = impl_->process->Collect();
  families.insert(families.end(), std::make_move_iterator(process.begin()),
                  std::make_move_iterator(process.end()));
  return prometheus::TextSerializer().Serialize(families);
}

void Metrics::AddStoreFamilies(prometheus::Registry& r) {
  using prometheus::Counter;
  using prometheus::Gauge;
  using prometheus::Histogram;
  Impl& m = *impl_;
  m.store_up_family = &Build<Gauge>(
      r, "rnnserve_session_store_up",
      "1 while the session store answers, 0 while it does not (streams then "
      "fail with UNAVAILABLE); the label names the store.");
  m.store_round_trips =
      &Build<Counter>(r, "rnnserve_session_store_round_trips_total",
                      "Operations sent to a remote session store (each one "
                      "round trip, a batch of commits included).")
           .Add({});
  m.store_takeovers =
      &Build<Counter>(r, "rnnserve_session_store_takeovers_total",
                      "Chunks not applied because another call had taken "
                      "their session over (ABORTED).")
           .Add({});
  m.store_replays =
      &Build<Counter>(r, "rnnserve_session_store_replays_total",
                      "Retried chunks answered again from their stored "
                      "answer, not run twice.")
           .Add({});
  m.store_sessions =
      &Build<Gauge>(r, "rnnserve_session_store_sessions",
                    "Sessions in the session store (with Redis, those of "
                    "every replica).")
           .Add({});
  auto& latency = Build<Histogram>(
      r, "rnnserve_session_store_latency_seconds",
      "Time of one operation of a remote session store, in seconds.");
  auto& errors =
      Build<Counter>(r, "rnnserve_session_store_errors_total",
                     "Operations of a remote session store that failed "
                     "(it did not answer, or refused).");
  const prometheus::Histogram::BucketBoundaries buckets = {
      50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3,
      10e-3, 25e-3,  50e-3,  0.1,    0.25, 0.5,    1.0};
  for (const char* operation : {"attach", "commit", "probe"}) {
    m.store_latency[operation] =
        &latency.Add({{"operation", operation}}, buckets);
    m.store_errors[operation] = &errors.Add({{"operation", operation}});
  }
}

void Metrics::SetSessionStoreBackend(const std::string& backend) {
  sessions_held_.store(backend == "memory");
  prometheus::Gauge& up = impl_->store_up_family->Add({{"backend", backend}});
  up.Set(1);
  impl_->store_up.store(&up);
}

void Metrics::OnTakenOver(const std::string&, const std::string&) {
  impl_->store_takeovers->Increment();
}

void Metrics::OnReplayed(const std::string&, const std::string&) {
  impl_->store_replays->Increment();
}

void Metrics::OnStoreOperation(std::string_view operation,
                               absl::Duration latency, bool ok) {
  impl_->store_round_trips->Increment();
  auto histogram = impl_->store_latency.find(operation);
  if (histogram == impl_->store_latency.end()) return;
  histogram->second->Observe(absl::ToDoubleSeconds(latency));
  if (!ok) impl_->store_errors.find(operation)->second->Increment();
}

void Metrics::OnStoreState(bool up, int64_t sessions) {
  if (prometheus::Gauge* gauge = impl_->store_up.load()) gauge->Set(up);
  if (sessions >= 0) impl_->store_sessions->Set(static_cast<double>(sessions));
}

void Metrics::SetMaxSessions(int64_t sessions) {
  impl_->sessions_max->Set(static_cast<double>(sessions));
}

void Metrics::AuthRefused(const std::string& rpc) {
  auto it = impl_->auth_refused.find(rpc);
  if (it != impl_->auth_refused.end()) it->second->Increment();
}

void Metrics::OnCreated(const std::string& model, const std::string& version) {
  const bool held = sessions_held_;
  impl_->RecordSession(model, version,
                       [&](ModelMetrics& m) { m.SessionCreated(held); });
}
void Metrics::OnResumed(const std::string& model, const std::string& version) {
  impl_->RecordSession(model, version,
                       [](ModelMetrics& m) { m.SessionResumed(); });
}
void Metrics::OnExpired(const std::string& model, const std::string& version) {
  impl_->RecordSession(model, version,
                       [](ModelMetrics& m) { m.SessionExpired(); });
}
void Metrics::OnRefused(const std::string& model, const std::string& version) {
  impl_->RecordSession(model, version,
                       [](ModelMetrics& m) { m.SessionRefused(); });
}
void Metrics::OnEnded(const std::string& model, const std::string& version) {
  const bool held = sessions_held_;
  impl_->RecordSession(model, version,
                       [&](ModelMetrics& m) { m.SessionEnded(held); });
}

}  // namespace rnnserve::metrics
