// The series of model versions: their families, each version's children
// (added and removed as versions come and go), their load outcomes and
// states, and the session events counted by version.
#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "server/metrics/metrics.h"
#include "server/metrics/metrics_impl.h"

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

}  // namespace

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
