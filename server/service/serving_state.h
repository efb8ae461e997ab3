// What every RPC handler shares: the models, the sessions, the limits.
#ifndef RNNSERVE_SERVER_SERVICE_SERVING_STATE_H_
#define RNNSERVE_SERVER_SERVICE_SERVING_STATE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/common/clock.h"
#include "server/metrics/metrics.h"
#include "server/runtime/model_runtime.h"
#include "server/service/bearer_tokens.h"
#include "server/service/call_limiter.h"
#include "server/service/limits.h"
#include "server/service/model_set.h"
#include "server/sessions/session_store.h"

namespace rnnserve::service {

// A call the server must end early when it stops taking calls: an open
// Regress stream, which could otherwise last as long as its client likes.
class Drainable {
 public:
  virtual ~Drainable() = default;
  // Asks the call to end soon with a status its client can act on, without
  // cutting a piece of work in the middle. Called at most once, from any
  // thread, with the Admission's lock held: it must not block nor call
  // back into the Admission.
  virtual void Drain() = 0;
};

// Whether the server takes new rnnserve.v1.Inference calls, and the open
// streams to end when it stops. Owned by the Server, which outlives every
// call. Thread-safe.
class Admission {
 public:
  // The refusal once closed: UNAVAILABLE, which clients may retry elsewhere.
  static constexpr char kRefusal[] = "server is shutting down";

  // OK while open; UNAVAILABLE (kRefusal) once closed. Notes the arrival.
  absl::Status Admit() const;
  // As Admit, and on OK registers `stream` to be drained on Close().
  absl::Status AdmitStream(Drainable* stream) const;
  // Unregisters `stream`; call before it is destroyed.
  void Remove(Drainable* stream) const;

  // Refuses every later call and drains every registered stream.
  // Idempotent.
  void Close();
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // Whether the server says it is ready for calls (the Open Inference
  // Protocol's ServerReady): until MarkNotReady() (health went NOT_SERVING,
  // the drain delay before shutdown) or Close(). Lock-free.
  void MarkNotReady() { not_ready_.store(true, std::memory_order_release); }
  bool ready() const {
    return !closed() && !not_ready_.load(std::memory_order_acquire);
  }

  // Blocks until no call has arrived (admitted or refused) for `quiet`, or
  // until `deadline`. After Close() it tells when clients have stopped
  // calling: each got its refusal and went elsewhere.
  void WaitUntilQuiet(absl::Duration quiet, absl::Time deadline) const;

 private:
  void NoteArrival() const;

  std::atomic<bool> closed_{false};
  std::atomic<bool> not_ready_{false};
  // absl::Time as nanoseconds since the epoch, for a lock-free hot path.
  mutable std::atomic<int64_t> last_arrival_ns_{0};
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_set<Drainable*> streams_ ABSL_GUARDED_BY(mu_);
};

// Owned by the Server; handlers borrow it. Immutable after start-up apart
// from the thread-safe parts it points to, and the model versions, which
// change while serving (ModelSets is thread-safe).
struct ServingState {
  // Every model's versions, by model name.
  ModelSets models;
  sessions::SessionStore* sessions = nullptr;
  metrics::Metrics* metrics = nullptr;  // May be null: nothing recorded.
  const Clock* clock = nullptr;
  Limits limits;
  // Tokens every Inference call must carry; null: no authentication.
  const BearerTokens* bearer_tokens = nullptr;
  // Calls in flight per bearer token; null: no quota.
  CallLimiter* calls = nullptr;
  // Whether calls are still taken; never null in a started server.
  const Admission* admission = nullptr;

  // The versions of the model called `name`: NOT_FOUND (naming the loaded
  // models) when there is none, INVALID_ARGUMENT when the name is empty.
  absl::StatusOr<const ModelSet*> FindModelSet(const std::string& name) const;

  // Ready version `version` of the model called `name`, or its newest ready
  // one when `version` is empty, held for the caller: NOT_FOUND naming the
  // model, the version and the ready versions when there is none.
  absl::StatusOr<ModelLease> FindModel(const std::string& name,
                                       const std::string& version = "") const;

  // A slot in `caller`'s quota of calls in flight (see CallLimiter).
  absl::StatusOr<CallSlot> AdmitCall(const std::string& caller) const;

  // The series of `model`'s version, or null.
  metrics::ModelMetrics* MetricsFor(const runtime::ModelRuntime& model) const;
  // The series of the version a call naming model `name` and `version`
  // (empty: the newest) goes to, or null when there is none.
  metrics::ModelMetrics* MetricsFor(const std::string& name,
                                    const std::string& version) const;
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_SERVING_STATE_H_
