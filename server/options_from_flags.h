// rnnserve's command-line flags and the options they make: which flags
// exist (with their --help text and defaults), and how their values become
// the server's options. main.cc parses, this checks and converts.
#ifndef RNNSERVE_SERVER_OPTIONS_FROM_FLAGS_H_
#define RNNSERVE_SERVER_OPTIONS_FROM_FLAGS_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/common/flags.h"
#include "server/service/server.h"

namespace rnnserve {

// Every flag of rnnserve, holding its default until parsed.
struct ServerFlags {
  std::string model_repository = "models";
  std::string grpc_address = "localhost:50051";
  // Not 9090: that is Prometheus' own port, where Debian's prometheus
  // package starts a server as soon as it is installed.
  std::string metrics_address = "localhost:8002";
  int64_t max_batch_size = 64;
  absl::Duration max_queue_delay = absl::ZeroDuration();
  int64_t max_queued_items = 1024;
  int64_t max_queued_steps = 1'000'000;
  int64_t max_queued_values = 32'000'000;
  int64_t slice_steps = 512;
  int64_t compute_threads = std::max(1u, std::thread::hardware_concurrency());
  int64_t engine_threads = 1;
  int64_t compute_nice = 5;
  int64_t max_sequence_length = 10000;
  int64_t max_sequences_per_request = 256;
  int64_t max_message_bytes = 64 << 20;
  int64_t max_server_memory_bytes = int64_t{1} << 30;
  absl::Duration session_idle_ttl = absl::Minutes(10);
  int64_t max_sessions = 10000;
  int64_t max_sessions_per_token = 1000;
  int64_t max_calls_per_token = 1024;
  std::string session_store = "memory";
  std::string session_store_password_file;
  absl::Duration session_store_timeout = absl::Seconds(1);
  absl::Duration drain_delay = absl::Seconds(5);
  absl::Duration shutdown_grace = absl::Seconds(10);
  std::string warmup_steps = "1,10,28";
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  std::string auth_tokens_file;
  std::string admin_tokens_file;
  std::string model_control_mode = "none";
  absl::Duration repository_poll_interval = absl::Seconds(5);
  int64_t max_streams_per_connection = 2048;
  absl::Duration keepalive_time = absl::Minutes(1);
  bool version = false;
};

// Binds every flag to its member of `values`, which must outlive `flags`.
void AddServerFlags(FlagSet& flags, ServerFlags& values);

// What the flags decide.
struct ProgramOptions {
  // As given; main.cc resolves a relative one.
  std::string model_repository;
  // Where /metrics is served; empty: nowhere.
  std::string metrics_address;
  service::ServerOptions server;
  // After SIGTERM or SIGINT: how long health says NOT_SERVING while calls
  // are still taken, then the grace Server::Shutdown gets.
  absl::Duration drain_delay;
  absl::Duration shutdown_grace;
};

// Checks what FlagSet cannot (warm-up steps, keepalive) and reads the TLS
// and bearer-token files. Errors are InvalidArgument naming the flag.
absl::StatusOr<ProgramOptions> OptionsFromFlags(const ServerFlags& flags);

}  // namespace rnnserve

#endif  // RNNSERVE_SERVER_OPTIONS_FROM_FLAGS_H_
