// Calls in flight per caller: one bearer token may not take the queues and
// the compute threads for everyone.
#ifndef RNNSERVE_SERVER_SERVICE_CALL_LIMITER_H_
#define RNNSERVE_SERVER_SERVICE_CALL_LIMITER_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace rnnserve::service {

class CallLimiter;

// One admitted call's place in its caller's quota, given back when the
// slot goes (or at Release). Move-only; not thread-safe: one call owns it.
// An empty slot (default, or a caller without quota) gives back nothing.
class CallSlot {
 public:
  CallSlot() = default;
  CallSlot(CallSlot&& other) noexcept;
  CallSlot& operator=(CallSlot&& other) noexcept;
  ~CallSlot() { Release(); }

  void Release();

 private:
  friend class CallLimiter;
  CallSlot(CallLimiter* limiter, std::string caller)
      : limiter_(limiter), caller_(std::move(caller)) {}

  CallLimiter* limiter_ = nullptr;
  std::string caller_;
};

// Counts the calls each caller has in flight: a Classify or RegressChunk
// call from its arrival to its answer, a Regress stream for as long as it
// is open. Callers are identified by service::CallerId (the digest of their
// bearer token); the empty caller (no authentication) is never limited.
// Thread-safe; must outlive its slots.
class CallLimiter {
 public:
  // `max_per_caller` 0: no limit.
  explicit CallLimiter(int64_t max_per_caller)
      : max_per_caller_(max_per_caller) {}

  // A slot for one more call of `caller`; RESOURCE_EXHAUSTED, naming the
  // quota and its flag, when the caller has max_per_caller in flight.
  absl::StatusOr<CallSlot> Admit(const std::string& caller);

  // Calls of `caller` in flight now.
  int64_t in_flight(const std::string& caller) const;

 private:
  friend class CallSlot;
  void Leave(const std::string& caller);

  const int64_t max_per_caller_;
  mutable absl::Mutex mu_;
  // Callers with no call in flight are absent.
  absl::flat_hash_map<std::string, int64_t> in_flight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_CALL_LIMITER_H_
