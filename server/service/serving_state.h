// What every RPC handler shares: the models, the sessions, the limits.
#ifndef RNNSERVE_SERVER_SERVICE_SERVING_STATE_H_
#define RNNSERVE_SERVER_SERVICE_SERVING_STATE_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/common/clock.h"
#include "server/metrics/metrics.h"
#include "server/runtime/model_runtime.h"
#include "server/service/bearer_tokens.h"
#include "server/service/call_limiter.h"
#include "server/service/limits.h"
#include "server/sessions/session_store.h"

namespace rnnserve::service {

// Owned by the Server; handlers borrow it. Immutable after start-up apart
// from the thread-safe parts it points to.
struct ServingState {
  std::map<std::string, std::unique_ptr<runtime::ModelRuntime>> models;
  sessions::SessionStore* sessions = nullptr;
  metrics::Metrics* metrics = nullptr;  // May be null: nothing recorded.
  const Clock* clock = nullptr;
  Limits limits;
  // Tokens every Inference call must carry; null: no authentication.
  const BearerTokens* bearer_tokens = nullptr;
  // Tests only (see ServerOptions::chunk_computed_hook); empty otherwise.
  std::function<void(const runtime::RuntimeTask&)> chunk_computed_hook;
  // Calls in flight per bearer token; null: no quota.
  CallLimiter* calls = nullptr;

  // The model called `name`: NOT_FOUND (naming the loaded models) when
  // there is none, INVALID_ARGUMENT when the name is empty.
  absl::StatusOr<runtime::ModelRuntime*> FindModel(
      const std::string& name) const;

  // A slot in `caller`'s quota of calls in flight (see CallLimiter).
  absl::StatusOr<CallSlot> AdmitCall(const std::string& caller) const;

  // The model's series, or null.
  metrics::ModelMetrics* MetricsFor(const std::string& name) const;
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_SERVING_STATE_H_
