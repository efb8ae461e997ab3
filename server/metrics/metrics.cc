#include "server/metrics/metrics.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

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

  absl::Mutex mu;
  std::string host ABSL_GUARDED_BY(mu);  // Where the exposer is reached.
  int port ABSL_GUARDED_BY(mu) = 0;
  // Last, so that it stops serving before anything it reads goes.
  std::unique_ptr<prometheus::Exposer> exposer ABSL_GUARDED_BY(mu);
};

Metrics::Metrics(const BuildInfo& build,
                 const std::vector<model::ModelConfig>& models)
    : impl_(std::make_unique<Impl>()) {
  using prometheus::Counter;
  using prometheus::Gauge;
  using prometheus::Histogram;
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

  auto& model_info = Build<Gauge>(
      r, "rnnserve_model_info",
      "Always 1; one series per loaded model, its shape in the labels.");
  auto& requests = Build<Counter>(
      r, "rnnserve_requests_total",
      "Finished calls (for Regress, finished chunks) by gRPC status code.");
  auto& latency = Build<Histogram>(
      r, "rnnserve_request_duration_seconds",
      "Time from a call's (or chunk's) arrival to its answer, in seconds.");
  auto& queue_wait = Build<Histogram>(
      r, "rnnserve_queue_wait_seconds",
      "Time a task waited in its model's queue before compute, in seconds.");
  auto& compute =
      Build<Histogram>(r, "rnnserve_compute_duration_seconds",
                       "Time of one engine call on one batch, in seconds.");
  auto& batch_size = Build<Histogram>(
      r, "rnnserve_batch_size",
      "Sequences (Classify) or chunks (Regress) run in one engine call.");
  auto& queue_depth =
      Build<Gauge>(r, "rnnserve_queue_depth",
                   "Time steps (of all sequences or chunks) waiting in a "
                   "model's queue.");
  auto& queue_capacity =
      Build<Gauge>(r, "rnnserve_queue_capacity",
                   "Most time steps a model's queue holds "
                   "(--max-queued-steps); calls beyond it get "
                   "RESOURCE_EXHAUSTED.");
  auto& sequences = Build<Counter>(
      r, "rnnserve_sequences_total",
      "Sequences (Classify) and chunks (Regress) run by the engine.");
  auto& steps = Build<Counter>(r, "rnnserve_steps_total",
                               "Time steps run by the engine.");
  auto& sessions_active =
      Build<Gauge>(r, "rnnserve_sessions_active",
                   "Streaming sessions the server holds now in its own memory "
                   "(0 with a shared store: see "
                   "rnnserve_session_store_sessions).");
  auto& sessions_created = Build<Counter>(r, "rnnserve_sessions_created_total",
                                          "Streaming sessions started.");
  auto& sessions_resumed =
      Build<Counter>(r, "rnnserve_sessions_resumed_total",
                     "Streaming sessions resumed by token on a new call.");
  auto& sessions_expired =
      Build<Counter>(r, "rnnserve_sessions_expired_total",
                     "Streaming sessions dropped after their idle TTL.");
  auto& sessions_refused = Build<Counter>(
      r, "rnnserve_sessions_refused_total",
      "New streaming sessions refused because the store was full.");
  auto& sessions_ended =
      Build<Counter>(r, "rnnserve_sessions_ended_total",
                     "Streaming sessions ended by their client.");

  for (const model::ModelConfig& config : models) {
    const std::string& name = config.name;
    // One series per version; the others are per model.
    model_info
        .Add({{"model", name},
              {"version", config.version},
              {"cell", std::string(model::CellName(config.cell))},
              {"task", std::string(model::TaskName(config.task))},
              {"input_size", std::to_string(config.input_size)},
              {"hidden_size", std::to_string(config.hidden_size)},
              {"num_layers", std::to_string(config.num_layers)},
              {"bidirectional", config.bidirectional ? "true" : "false"},
              {"output_size", std::to_string(config.output_size)}})
        .Set(1);
    if (models_.contains(name)) continue;  // Another version of the model.
    auto& slot = models_[name];
    slot.reset(new ModelMetrics());  // Private constructor: no make_unique.
    ModelMetrics& m = *slot;

    // Every method for every model, even the one its task refuses: those
    // refusals (FAILED_PRECONDITION) are requests too.
    for (Method method : kMethods) {
      const int i = static_cast<int>(method);
      const prometheus::Labels labels = {{"model", name},
                                         {"method", MethodName(method)}};
      for (int code = 0; code < kNumCodes; ++code) {
        prometheus::Labels with_code = labels;
        with_code.emplace("code", kCodeNames[code]);
        m.requests_[i][code] = &requests.Add(with_code);
      }
      m.latency_[i] = &latency.Add(labels, LatencyBuckets());
      m.queue_wait_[i] = &queue_wait.Add(labels, LatencyBuckets());
      m.compute_[i] = &compute.Add(labels, LatencyBuckets());
      m.batch_size_[i] = &batch_size.Add(labels, BatchBuckets());
      m.queue_depth_[i] = &queue_depth.Add(labels);
      m.queue_capacity_[i] = &queue_capacity.Add(labels);
    }
    const prometheus::Labels labels = {{"model", name}};
    m.sequences_ = &sequences.Add(labels);
    m.steps_ = &steps.Add(labels);
    m.sessions_active_ = &sessions_active.Add(labels);
    m.sessions_created_ = &sessions_created.Add(labels);
    m.sessions_resumed_ = &sessions_resumed.Add(labels);
    m.sessions_expired_ = &sessions_expired.Add(labels);
    m.sessions_refused_ = &sessions_refused.Add(labels);
    m.sessions_ended_ = &sessions_ended.Add(labels);
  }
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

ModelMetrics* Metrics::ForModel(const std::string& model) {
  auto it = models_.find(model);
  return it == models_.end() ? nullptr : it->second.get();
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

void Metrics::OnTakenOver(const std::string&) {
  impl_->store_takeovers->Increment();
}

void Metrics::OnReplayed(const std::string&) {
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

void Metrics::OnCreated(const std::string& model) {
  if (ModelMetrics* m = ForModel(model)) m->SessionCreated(sessions_held_);
}
void Metrics::OnResumed(const std::string& model) {
  if (ModelMetrics* m = ForModel(model)) m->SessionResumed();
}
void Metrics::OnExpired(const std::string& model) {
  if (ModelMetrics* m = ForModel(model)) m->SessionExpired();
}
void Metrics::OnRefused(const std::string& model) {
  if (ModelMetrics* m = ForModel(model)) m->SessionRefused();
}
void Metrics::OnEnded(const std::string& model) {
  if (ModelMetrics* m = ForModel(model)) m->SessionEnded(sessions_held_);
}

}  // namespace rnnserve::metrics
