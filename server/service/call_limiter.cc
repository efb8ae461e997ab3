#include "server/service/call_limiter.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace rnnserve::service {

CallSlot::CallSlot(CallSlot&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)),
      caller_(std::move(other.caller_)) {}

CallSlot& CallSlot::operator=(CallSlot&& other) noexcept {
  if (this != &other) {
    Release();
    limiter_ = std::exchange(other.limiter_, nullptr);
    caller_ = std::move(other.caller_);
  }
  return *this;
}

void CallSlot::Release() {
  if (limiter_ == nullptr) return;
  std::exchange(limiter_, nullptr)->Leave(caller_);
}

absl::StatusOr<CallSlot> CallLimiter::Admit(const std::string& caller) {
  if (caller.empty() || max_per_caller_ <= 0) return CallSlot();
  absl::MutexLock lock(&mu_);
  int64_t& calls = in_flight_[caller];
  if (calls >= max_per_caller_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this bearer token has its quota of ", max_per_caller_,
        " calls in flight (--max-calls-per-token; an open Regress stream "
        "counts as one call); wait for one to finish or retry later"));
  }
  ++calls;
  return CallSlot(this, caller);
}

void CallLimiter::Leave(const std::string& caller) {
  absl::MutexLock lock(&mu_);
  auto it = in_flight_.find(caller);
  if (--it->second == 0) in_flight_.erase(it);
}

int64_t CallLimiter::in_flight(const std::string& caller) const {
  absl::MutexLock lock(&mu_);
  auto it = in_flight_.find(caller);
  return it == in_flight_.end() ? 0 : it->second;
}

}  // namespace rnnserve::service
