// The whole server: engines, batching, sessions and the gRPC endpoint.
#ifndef RNNSERVE_SERVER_SERVICE_SERVER_H_
#define RNNSERVE_SERVER_SERVICE_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/batching/scheduler.h"
#include "server/common/clock.h"
#include "server/metrics/metrics.h"
#include "server/model/model.h"
#include "server/service/bearer_tokens.h"
#include "server/service/call_limiter.h"
#include "server/service/limits.h"
#include "server/service/model_repository.h"
#include "server/service/serving_state.h"
#include "server/service/tls_options.h"
#include "server/sessions/redis_connection.h"
#include "server/sessions/session_store.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace rnnserve::service {

class InferenceService;
class RepositoryService;

struct ServerOptions {
  // Where gRPC listens; port 0 picks a free one (see Server::port()).
  std::string grpc_address = "localhost:50051";
  batching::QueueOptions queue;
  // Threads that run the engines; each runs one batch at a time.
  int compute_threads = 2;
  // Threads the engine may use inside one batch.
  int engine_threads = 1;
  // The compute threads' nice value: above 0, the threads that receive and
  // answer calls preempt them on a busy CPU.
  int compute_nice = 0;
  Limits limits;
  sessions::SessionLimits sessions;
  // Where sessions live: unset, in this process's memory; set, in the
  // Redis every replica shares (see sessions/redis_sessions.h).
  std::optional<sessions::RedisConnection::Options> redis_sessions;
  // How often the session store is probed for health and metrics (the
  // health service "rnnserve.v1.SessionStore"). Default 1 s.
  absl::Duration store_probe_interval = absl::Seconds(1);
  // Step counts prepared for every batch size at start-up.
  std::vector<int> warmup_steps = {1, 10, 28};
  // Largest request message gRPC accepts. Default 64 MiB.
  int max_message_bytes = 64 << 20;
  // How often expired sessions are dropped. Default 10 s.
  absl::Duration reap_interval = absl::Seconds(10);
  // TLS, or mutual TLS, on the gRPC port. Default: plaintext.
  TlsOptions tls;
  // When set, every rnnserve.v1.Inference call must carry one of these
  // tokens; health checks and reflection stay open. Default: unset.
  // Tokens of the rnnserve.v1.Repository service, which is offered only
  // with them; not Inference tokens.
  std::optional<BearerTokens> admin_tokens;
  // Where models come from while serving: with a root, Start loads every
  // model folder of it (the `models` given must be empty) and rescans it
  // on request or by polling; without one, the given models are served.
  RepositoryOptions repository;
  std::optional<BearerTokens> bearer_tokens;
  // With bearer_tokens: most calls one token may have in flight (a
  // Classify or RegressChunk call until its answer, a Regress stream while
  // it is open); beyond it calls get RESOURCE_EXHAUSTED. 0: no limit.
  // Without bearer_tokens it does not apply. (The per-token session quota
  // is sessions.max_sessions_per_owner.) Default 1024.
  int64_t max_calls_per_token = 1024;
  // Most calls open at once on one HTTP/2 connection (HTTP/2's
  // SETTINGS_MAX_CONCURRENT_STREAMS); a client's further calls wait for a
  // free stream. Default 2048: a load generator's 1,000 sessions on one
  // channel, with room for its unary calls.
  int max_streams_per_connection = 2048;
  // A connection that has been silent this long is pinged; one that does
  // not answer within 20 s is closed, which ends its calls and frees their
  // sessions for resumption. Default 1 min.
  absl::Duration keepalive_time = absl::Minutes(1);
  // Most memory gRPC may take for its transports: buffers of messages being
  // received and sent on every connection. Past it gRPC stops reading from
  // connections and refuses new calls until memory is freed, instead of
  // growing without bound under large or many calls. Default 1 GiB.
  int64_t max_server_memory_bytes = int64_t{1} << 30;
  // Tests only: runs on the compute thread when a chunk's compute has
  // finished, before the runtime decides whether to commit it, so that a
  // test can hold a chunk there. Default: none.
  std::function<void(const runtime::RuntimeTask&)> chunk_computed_hook;
  // On Shutdown, once new calls are refused, how long no call may arrive
  // before gRPC itself is shut down (within the grace): gRPC cancels a call
  // that reaches it after that, rather than refusing it with UNAVAILABLE,
  // so the server first waits until its clients have got their refusals
  // and stopped calling. Default 250 ms.
  absl::Duration shutdown_quiet = absl::Milliseconds(250);
};

// Serves rnnserve.v1.Inference, grpc.health.v1.Health and reflection.
// Besides the options, every connection gets fixed transport limits (see
// server.cc): a 10 s handshake, client keepalive pings no more often than
// every 10 s, and closing after 30 min without calls. Thread-safe.
class Server {
 public:
  // Builds an engine per model (given, or every one of
  // options.repository.root), warms each up, starts the compute threads
  // and gRPC. Health is SERVING when it returns. `metrics` (may be null)
  // and `session_clock` must outlive the server. Sessions age by
  // `session_clock` (tests inject a fake one); call deadlines, queue delays
  // and latencies are on a monotonic clock (gRPC's deadlines are carried
  // over as the time they leave), so a wall-clock step does not move them.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options, const std::vector<model::Model>& models,
      metrics::Metrics* metrics, const Clock& session_clock);

  // Shuts down with no grace if Shutdown was not called.
  ~Server();

  // The bound gRPC port.
  int port() const { return port_; }

  // Health goes NOT_SERVING, overall and for every model, so that load
  // balancers and health-checking clients stop sending calls; calls are
  // still served (the drain delay before Shutdown). Idempotent.
  void MarkNotServing();

  // Stops, within `grace`:
  // 1. health goes NOT_SERVING (if MarkNotServing was not called);
  // 2. new rnnserve.v1.Inference calls get UNAVAILABLE "server is shutting
  //    down"; open Regress streams end with UNAVAILABLE (resume the session
  //    with its token), each once its chunk in flight is answered;
  // 3. once no call has arrived for options.shutdown_quiet, gRPC shuts down:
  //    calls in flight finish until the grace ends, then are cancelled;
  // 4. the compute threads stop.
  // Thread-safe and idempotent: every caller returns once all is stopped.
  void Shutdown(absl::Duration grace);

  sessions::SessionStore& sessions() { return *sessions_; }
  const ServingState& state() const { return state_; }
  // Rescans, loads and unloads model versions (SIGHUP, tests).
  ModelRepository& repository() { return *repository_; }

 private:
  explicit Server(const ServerOptions& options);
  // A version's engine and runtime, warmed up (the repository's thread, or
  // Start's).
  absl::StatusOr<ModelLease> MakeRuntime(const model::Model& m);
  // A model's health status, while the server serves.
  void SetModelServing(const std::string& model, bool serving);
  void ReapLoop();
  // Probes the session store; sets its health and metrics.
  void ProbeStore();
  void StopAll(absl::Duration grace);

  const ServerOptions options_;
  const SteadyClock clock_;
  metrics::Metrics* metrics_ = nullptr;
  std::unique_ptr<sessions::SessionStore> sessions_;
  std::unique_ptr<CallLimiter> calls_;
  std::unique_ptr<batching::Scheduler> scheduler_;
  Admission admission_;
  ServingState state_;
  // After state_: destroyed first, it may hold versions out of service.
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<InferenceService> service_;
  std::unique_ptr<RepositoryService> repository_service_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  absl::Notification stop_reaper_;
  std::thread reaper_;
  absl::Mutex shutdown_mu_;
  bool not_serving_ ABSL_GUARDED_BY(shutdown_mu_) = false;
  bool shutdown_started_ ABSL_GUARDED_BY(shutdown_mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
  // The store answered its last probe (for logging its changes).
  bool store_up_ ABSL_GUARDED_BY(shutdown_mu_) = true;
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_SERVER_H_
