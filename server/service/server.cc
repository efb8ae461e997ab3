#include "server/service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/log.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"
#include "server/common/thread_priority.h"
#include "server/engine/dnnl_engine.h"
#include "server/service/inference_service.h"
#include "server/service/repository_service.h"
#include "server/sessions/memory_sessions.h"
#include "server/sessions/redis_sessions.h"

namespace rnnserve::service {

// The health service name of the whole API.
constexpr char kServiceName[] = "rnnserve.v1.Inference";
// The health service name of the session store: NOT_SERVING while it does
// not answer (streams fail then; Classify does not).
constexpr char kStoreServiceName[] = "rnnserve.v1.SessionStore";

// Transport limits that need no tuning per deployment (SECURITY.md lists
// them). A TLS or HTTP/2 handshake takes milliseconds; one still going after
// 10 s holds a connection for nothing.
constexpr absl::Duration kHandshakeTimeout = absl::Seconds(10);
// An unanswered keepalive ping means the peer or the path is gone.
constexpr absl::Duration kKeepaliveTimeout = absl::Seconds(20);
// Clients may ping to keep NAT and load-balancer flows open, but not more
// often than this while the server sends nothing; a client that does so
// more than twice is disconnected (a ping flood).
constexpr absl::Duration kMinClientPingInterval = absl::Seconds(10);
constexpr int kMaxPingStrikes = 2;
// Connections with no call for this long are closed; clients reconnect
// transparently on their next call.
constexpr absl::Duration kMaxConnectionIdle = absl::Minutes(30);

namespace {

int Millis(absl::Duration d) {
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(d), INT32_MAX));
}

std::shared_ptr<grpc::ServerCredentials> Credentials(const TlsOptions& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(
      tls.mutual() ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                   : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_root_certs = tls.client_ca;
  ssl.pem_key_cert_pairs.push_back({tls.private_key, tls.cert_chain});
  return grpc::SslServerCredentials(ssl);
}

void SetTransportLimits(const ServerOptions& options,
                        grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  grpc::ResourceQuota quota("rnnserve");
  quota.Resize(static_cast<size_t>(options.max_server_memory_bytes));
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_streams_per_connection);
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             Millis(kHandshakeTimeout));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             Millis(options.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             Millis(kKeepaliveTimeout));
  // Keepalive covers connections without calls too: the idle limit below
  // closes live ones, keepalive finds dead ones sooner.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // By default a transport stops pinging after two pings without data, so
  // a silent stream's vanished client would hold its session attached.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      Millis(kMinClientPingInterval));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, kMaxPingStrikes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             Millis(kMaxConnectionIdle));
}

absl::StatusOr<std::unique_ptr<sessions::SessionStore>> NewSessionStore(
    const ServerOptions& options, const Clock& session_clock,
    metrics::Metrics* metrics) {
  if (!options.redis_sessions.has_value()) {
    return std::make_unique<sessions::MemorySessions>(options.sessions,
                                                      session_clock, metrics);
  }
  sessions::RedisSessions::Options redis;
  redis.connection = *options.redis_sessions;
  redis.limits = options.sessions;
  auto store = std::make_unique<sessions::RedisSessions>(redis, metrics);
  // A wrong password or database is a configuration error: refuse to start.
  // A Redis that is down now may come back: start, and say so.
  if (absl::Status probe = store->Probe(); !probe.ok()) {
    if (!absl::IsUnavailable(probe)) return probe;
    Log("warning: ", probe.message(),
        "; streams fail with UNAVAILABLE until it answers");
  }
  return store;
}

}  // namespace

Server::Server(const ServerOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options, const std::vector<model::Model>& models,
    metrics::Metrics* metrics, const Clock& session_clock) {
  std::unique_ptr<Server> server(new Server(options));
  const Clock& clock = server->clock_;
  server->metrics_ = metrics;
  if (metrics != nullptr)
    metrics->SetMaxSessions(options.sessions.max_sessions);
  ASSIGN_OR_RETURN(server->sessions_,
                   NewSessionStore(options, session_clock, metrics));
  if (metrics != nullptr) {
    metrics->SetSessionStoreBackend(std::string(server->sessions_->backend()));
  }
  const int engine_threads = options.engine_threads;
  const int compute_nice = options.compute_nice;
  server->scheduler_ = std::make_unique<batching::Scheduler>(
      batching::Scheduler::Options{
          options.compute_threads,
          [engine_threads, compute_nice] {
            engine::SetThreadsForThisThread(engine_threads);
            if (compute_nice == 0) return;
            // Latency before throughput: a compute thread that keeps its
            // default priority serves a little more, but each call waits.
            absl::Status status = SetThisThreadNice(compute_nice);
            if (!status.ok()) Log("rnnserve: ", status.ToString());
          }},
      clock);

  ServingState& state = server->state_;
  state.sessions = server->sessions_.get();
  state.metrics = metrics;
  state.clock = &clock;
  state.limits = options.limits;
  state.admission = &server->admission_;
  if (server->options_.bearer_tokens.has_value()) {
    state.bearer_tokens = &*server->options_.bearer_tokens;
    server->calls_ = std::make_unique<CallLimiter>(options.max_calls_per_token);
    state.calls = server->calls_.get();
  }
  // Plans are made for the thread count that will run them.
  engine::SetThreadsForThisThread(engine_threads);
  Server* s = server.get();
  server->repository_ = std::make_unique<ModelRepository>(
      options.repository, state.models,
      [s](const model::Model& m) { return s->MakeRuntime(m); },
      server->sessions_.get(), metrics,
      [s](const std::string& model, bool serving) {
        s->SetModelServing(model, serving);
      });
  if (!options.repository.root.empty()) {
    RETURN_IF_ERROR(server->repository_->LoadAll());
  }
  for (const model::Model& m : models) {
    RETURN_IF_ERROR(server->repository_->Add(m));
  }
  server->scheduler_->Start();
  // Versions are loaded and warmed up at the compute threads' priority, so
  // that a load slows the calls served meanwhile no more than they do.
  server->repository_->Start([engine_threads, compute_nice] {
    engine::SetThreadsForThisThread(engine_threads);
    if (compute_nice != 0) SetThisThreadNice(compute_nice).IgnoreError();
  });

  server->service_ = std::make_unique<InferenceService>(state);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.grpc_address, Credentials(options.tls),
                           &server->port_);
  SetTransportLimits(options, builder);
  builder.RegisterService(server->service_.get());
  if (server->options_.admin_tokens.has_value()) {
    server->repository_service_ = std::make_unique<RepositoryService>(
        *server->repository_, *server->options_.admin_tokens);
    builder.RegisterService(server->repository_service_.get());
  }
  // The unary methods, marked generic in the service above.
  builder.RegisterCallbackGenericService(server->service_->unary_methods());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    server->repository_->Stop();
    server->scheduler_->Stop();
    return absl::UnavailableError(
        absl::StrCat("could not listen on ", options.grpc_address,
                     " (address in use, or not an address of this machine?)"));
  }
  grpc::HealthCheckServiceInterface* health =
      server->grpc_server_->GetHealthCheckService();
  health->SetServingStatus(kServiceName, true);
  for (const ModelSet* set : state.models.All()) {
    health->SetServingStatus(set->name(), set->ReadyCount() > 0);
  }
  server->ProbeStore();
  server->reaper_ = std::thread([s = server.get()] { s->ReapLoop(); });
  return server;
}

Server::~Server() { Shutdown(absl::ZeroDuration()); }

absl::StatusOr<ModelLease> Server::MakeRuntime(const model::Model& m) {
  ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> engine,
                   engine::CreateDnnlEngine(m));
  auto runtime = std::make_shared<runtime::ModelRuntime>(
      std::move(engine), options_.queue, *scheduler_, clock_,
      metrics_ == nullptr ? nullptr : metrics_->AddModelVersion(m.config),
      sessions_.get());
  if (options_.chunk_computed_hook) {
    runtime->SetChunkComputedHook(options_.chunk_computed_hook);
  }
  const absl::Time start = absl::Now();
  if (absl::Status s = runtime->Warmup(options_.warmup_steps); !s.ok()) {
    return absl::InternalError(
        absl::StrCat("warming up model ", m.config.name, ": ", s.message()));
  }
  Log("model ", m.config.name, " version ", m.config.version, " (",
      AbslView(model::CellName(m.config.cell)), ", ", m.config.num_layers,
      " layer(s), hidden ", m.config.hidden_size, ", ",
      AbslView(model::TaskName(m.config.task)), ") warmed up in ",
      absl::FormatDuration(absl::Now() - start));
  return runtime;
}

void Server::SetModelServing(const std::string& model, bool serving) {
  absl::MutexLock lock(&shutdown_mu_);
  // After MarkNotServing every status stays NOT_SERVING.
  if (not_serving_ || grpc_server_ == nullptr) return;
  grpc_server_->GetHealthCheckService()->SetServingStatus(model, serving);
}

void Server::ReapLoop() {
  absl::Time next_reap = absl::Now() + options_.reap_interval;
  const absl::Duration tick =
      std::min(options_.reap_interval, options_.store_probe_interval);
  while (!stop_reaper_.WaitForNotificationWithTimeout(tick)) {
    ProbeStore();
    if (absl::Now() >= next_reap) {
      sessions_->Reap();
      next_reap = absl::Now() + options_.reap_interval;
    }
  }
}

void Server::ProbeStore() {
  // Counting the sessions asks the store as much as a ping would: one
  // round trip says both whether it answers and how many it holds.
  const absl::StatusOr<int64_t> count = sessions_->Count();
  const absl::Status up = count.status();
  {
    absl::MutexLock lock(&shutdown_mu_);
    // After MarkNotServing every status stays NOT_SERVING.
    if (!not_serving_ && grpc_server_ != nullptr) {
      grpc_server_->GetHealthCheckService()->SetServingStatus(kStoreServiceName,
                                                              up.ok());
    }
    if (up.ok() != store_up_) {
      store_up_ = up.ok();
      if (up.ok()) {
        Log("session store (", AbslView(sessions_->backend()),
            ") answers again");
      } else {
        Log("session store (", AbslView(sessions_->backend()),
            ") does not answer: ", up.message());
      }
    }
  }
  if (metrics_ != nullptr) metrics_->OnStoreState(up.ok(), count.value_or(-1));
}

void Server::MarkNotServing() {
  absl::MutexLock lock(&shutdown_mu_);
  if (not_serving_) return;
  not_serving_ = true;
  admission_.MarkNotReady();
  // Every service, the overall one included, reports NOT_SERVING, and
  // later changes are ignored.
  if (grpc_server_ != nullptr)
    grpc_server_->GetHealthCheckService()->Shutdown();
}

void Server::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&shutdown_mu_);
    if (shutdown_started_) {
      // Another caller is stopping the server: return when it is done.
      shutdown_mu_.Await(absl::Condition(&shut_down_));
      return;
    }
    shutdown_started_ = true;
  }
  StopAll(grace);
  absl::MutexLock lock(&shutdown_mu_);
  shut_down_ = true;
}

void Server::StopAll(absl::Duration grace) {
  const absl::Time deadline = absl::Now() + grace;
  MarkNotServing();
  admission_.Close();
  if (grpc_server_ != nullptr) {
    admission_.WaitUntilQuiet(options_.shutdown_quiet, deadline);
    grpc_server_->Shutdown(absl::ToChronoTime(deadline));
    grpc_server_->Wait();
  }
  // No version changes from here on.
  if (repository_ != nullptr) repository_->Stop();
  if (scheduler_ != nullptr) scheduler_->Stop();
  if (repository_ != nullptr) repository_->StopCommitting();
  stop_reaper_.Notify();
  if (reaper_.joinable()) reaper_.join();
}

}  // namespace rnnserve::service
