// The session store's series: whether it answers, its sessions, and the
// latency, errors, round trips, take-overs and replays of its operations.
#include <string>
#include <string_view>

#include "server/metrics/metrics.h"
#include "server/metrics/metrics_impl.h"

namespace rnnserve::metrics {

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

}  // namespace rnnserve::metrics
