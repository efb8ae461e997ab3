#include "server/service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/common/log.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"
#include "server/engine/dnnl_engine.h"
#include "server/service/inference_service.h"

namespace rnnserve::service {

// The health service name of the whole API.
constexpr char kServiceName[] = "rnnserve.v1.Inference";

Server::Server(const ServerOptions& options) : options_(options) {}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options, const std::vector<model::Model>& models,
    metrics::Metrics* metrics, const Clock& session_clock) {
  std::unique_ptr<Server> server(new Server(options));
  const Clock& clock = server->clock_;
  if (metrics != nullptr)
    metrics->SetMaxSessions(options.sessions.max_sessions);
  server->sessions_ = std::make_unique<sessions::SessionStore>(
      options.sessions, session_clock, metrics);
  const int engine_threads = options.engine_threads;
  server->scheduler_ = std::make_unique<batching::Scheduler>(
      batching::Scheduler::Options{options.compute_threads,
                                   [engine_threads] {
                                     engine::SetThreadsForThisThread(
                                         engine_threads);
                                   }},
      clock);

  ServingState& state = server->state_;
  state.sessions = server->sessions_.get();
  state.metrics = metrics;
  state.clock = &clock;
  state.limits = options.limits;
  // Plans are made for the thread count that will run them.
  engine::SetThreadsForThisThread(engine_threads);
  for (const model::Model& m : models) {
    ASSIGN_OR_RETURN(std::unique_ptr<engine::Engine> engine,
                     engine::CreateDnnlEngine(m));
    auto runtime = std::make_unique<runtime::ModelRuntime>(
        std::move(engine), options.queue, *server->scheduler_, clock,
        metrics == nullptr ? nullptr : metrics->ForModel(m.config.name));
    const absl::Time start = absl::Now();
    if (absl::Status s = runtime->Warmup(options.warmup_steps); !s.ok()) {
      return absl::InternalError(
          absl::StrCat("warming up model ", m.config.name, ": ", s.message()));
    }
    Log("model ", m.config.name, " version ", m.config.version, " (",
        AbslView(model::CellName(m.config.cell)), ", ", m.config.num_layers,
        " layer(s), hidden ", m.config.hidden_size, ", ",
        AbslView(model::TaskName(m.config.task)), ") warmed up in ",
        absl::FormatDuration(absl::Now() - start));
    state.models.emplace(m.config.name, std::move(runtime));
  }
  server->scheduler_->Start();

  server->service_ = std::make_unique<InferenceService>(state);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.grpc_address,
                           grpc::InsecureServerCredentials(), &server->port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.RegisterService(server->service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    server->scheduler_->Stop();
    return absl::UnavailableError(
        absl::StrCat("could not listen on ", options.grpc_address,
                     " (address in use, or not an address of this machine?)"));
  }
  grpc::HealthCheckServiceInterface* health =
      server->grpc_server_->GetHealthCheckService();
  health->SetServingStatus(kServiceName, true);
  for (const auto& [name, runtime] : state.models) {
    health->SetServingStatus(name, true);
  }
  server->reaper_ = std::thread([s = server.get()] { s->ReapLoop(); });
  return server;
}

Server::~Server() { Shutdown(absl::ZeroDuration()); }

void Server::ReapLoop() {
  while (!stop_reaper_.WaitForNotificationWithTimeout(options_.reap_interval)) {
    sessions_->Reap();
  }
}

void Server::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  if (grpc_server_ != nullptr) {
    // Every service, the overall one included, reports NOT_SERVING.
    grpc_server_->GetHealthCheckService()->Shutdown();
    grpc_server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    grpc_server_->Wait();
  }
  if (scheduler_ != nullptr) scheduler_->Stop();
  stop_reaper_.Notify();
  if (reaper_.joinable()) reaper_.join();
}

}  // namespace rnnserve::service
