#include "server/service/serving_state.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/status_macros.h"

namespace rnnserve::service {

void Admission::NoteArrival() const {
  last_arrival_ns_.store(absl::ToUnixNanos(absl::Now()),
                         std::memory_order_relaxed);
}

absl::Status Admission::Admit() const {
  NoteArrival();
  if (closed()) return absl::UnavailableError(kRefusal);
  return absl::OkStatus();
}

absl::Status Admission::AdmitStream(Drainable* stream) const {
  NoteArrival();
  // Under the lock, so that Close() drains every stream it admitted.
  absl::MutexLock lock(&mu_);
  if (closed()) return absl::UnavailableError(kRefusal);
  streams_.insert(stream);
  return absl::OkStatus();
}

void Admission::Remove(Drainable* stream) const {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

void Admission::Close() {
  absl::MutexLock lock(&mu_);
  if (closed_.exchange(true, std::memory_order_acq_rel)) return;
  // A stream is removed (under this lock) before it is destroyed, so every
  // one here is alive while the lock is held.
  for (Drainable* stream : streams_) stream->Drain();
}

void Admission::WaitUntilQuiet(absl::Duration quiet,
                               absl::Time deadline) const {
  for (;;) {
    const absl::Time now = absl::Now();
    const absl::Time quiet_at =
        absl::FromUnixNanos(last_arrival_ns_.load(std::memory_order_relaxed)) +
        quiet;
    if (quiet_at <= now || deadline <= now) return;
    absl::SleepFor(std::min(quiet_at, deadline) - now);
  }
}

absl::StatusOr<const ModelSet*> ServingState::FindModelSet(
    const std::string& name) const {
  ASSIGN_OR_RETURN(const ModelSet* set, models.Find(name));
  return set;
}

absl::StatusOr<ModelLease> ServingState::FindModel(
    const std::string& name, const std::string& version) const {
  ASSIGN_OR_RETURN(const ModelSet* set, FindModelSet(name));
  ModelLease found = version.empty() ? set->Newest() : set->Find(version);
  if (found != nullptr) return found;
  if (version.empty()) {
    return absl::NotFoundError(
        absl::StrCat("model: model \"", name, "\" has no version loaded"));
  }
  return absl::NotFoundError(
      absl::StrCat("model_version: model \"", name, "\" has version",
                   set->ReadyCount() == 1 ? " " : "s ", set->ReadyList(),
                   " loaded, not \"", version.substr(0, 128), "\""));
}

absl::StatusOr<CallSlot> ServingState::AdmitCall(
    const std::string& caller) const {
  if (calls == nullptr) return CallSlot();
  return calls->Admit(caller);
}

metrics::ModelMetrics* ServingState::MetricsFor(
    const runtime::ModelRuntime& model) const {
  if (metrics == nullptr) return nullptr;
  return metrics->ForModel(model.config().name, model.config().version);
}

metrics::ModelMetrics* ServingState::MetricsFor(
    const std::string& name, const std::string& version) const {
  absl::StatusOr<ModelLease> model = FindModel(name, version);
  return model.ok() ? MetricsFor(**model) : nullptr;
}

}  // namespace rnnserve::service
