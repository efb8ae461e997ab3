// Recording: the hot path. Every child was made by Metrics::AddModelVersion,
// so nothing here registers, looks up or allocates.
#include <algorithm>

#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "server/metrics/metrics.h"

namespace rnnserve::metrics {
namespace {

int Index(Method method) { return static_cast<int>(method); }

// A code outside absl's 0..16 (which gRPC shares) counts as UNKNOWN, as
// gRPC itself treats it.
int CodeIndex(absl::StatusCode code) {
  const int index = static_cast<int>(code);
  return index >= 0 && index < kNumCodes
             ? index
             : static_cast<int>(absl::StatusCode::kUnknown);
}

// Durations from a fake or stepped clock can come out negative; a
// histogram would file them under its first bucket and shrink its sum.
double Seconds(absl::Duration d) {
  return std::max(0.0, absl::ToDoubleSeconds(d));
}

}  // namespace

void ModelMetrics::RequestDone(Method method, absl::StatusCode code,
                               absl::Duration latency) {
  requests_[Index(method)][CodeIndex(code)]->Increment();
  latency_[Index(method)]->Observe(Seconds(latency));
}

void ModelMetrics::QueueWait(Method method, absl::Duration wait) {
  queue_wait_[Index(method)]->Observe(Seconds(wait));
}

void ModelMetrics::BatchRan(Method method, int items, int64_t steps,
                            absl::Duration compute) {
  batch_size_[Index(method)]->Observe(items);
  compute_[Index(method)]->Observe(Seconds(compute));
  sequences_->Increment(std::max(0, items));
  steps_->Increment(static_cast<double>(std::max<int64_t>(0, steps)));
}

void ModelMetrics::SetQueueDepth(Method method, int64_t steps) {
  queue_depth_[Index(method)]->Set(static_cast<double>(steps));
}

void ModelMetrics::SetQueueCapacity(Method method, int64_t steps) {
  queue_capacity_[Index(method)]->Set(static_cast<double>(steps));
}

// The active gauge follows the store: up when a session is made, down when
// it leaves (expired or ended). Resumes and refusals do not change it.
void ModelMetrics::SessionCreated(bool held) {
  sessions_created_->Increment();
  if (held) sessions_active_->Increment();
}

void ModelMetrics::SessionResumed() { sessions_resumed_->Increment(); }

void ModelMetrics::SessionExpired() {
  sessions_expired_->Increment();
  sessions_active_->Decrement();
}

void ModelMetrics::SessionRefused() { sessions_refused_->Increment(); }

void ModelMetrics::SessionEnded(bool held) {
  sessions_ended_->Increment();
  if (held) sessions_active_->Decrement();
}

const char* MethodName(Method method) {
  switch (method) {
    case Method::kClassify:
      return "Classify";
    case Method::kRegress:
      return "Regress";
    case Method::kRegressChunk:
      return "RegressChunk";
    case Method::kModelInfer:
      return "ModelInfer";
  }
  return "unknown";
}

}  // namespace rnnserve::metrics
