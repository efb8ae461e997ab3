// rnnserve: serves recurrent models over gRPC. Parses flags, loads the model
// repository, starts the server and waits for SIGTERM or SIGINT.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "server/common/clock.h"
#include "server/common/flags.h"
#include "server/common/log.h"
#include "server/metrics/metrics.h"
#include "server/model/loader.h"
#include "server/service/server.h"

namespace rnnserve {
namespace {

struct Flags {
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
  int64_t compute_threads = std::max(1u, std::thread::hardware_concurrency());
  int64_t engine_threads = 1;
  int64_t max_sequence_length = 10000;
  int64_t max_sequences_per_request = 256;
  int64_t max_message_bytes = 64 << 20;
  absl::Duration session_idle_ttl = absl::Minutes(10);
  int64_t max_sessions = 10000;
  absl::Duration shutdown_grace = absl::Seconds(10);
  std::string warmup_steps = "1,10,28";
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  std::string auth_tokens_file;
  int64_t max_streams_per_connection = 2048;
  absl::Duration keepalive_time = absl::Minutes(1);
  bool version = false;
};

void AddFlags(FlagSet& flags, Flags& f) {
  flags.String("model-repository", &f.model_repository,
               "Folder of models: every sub-folder is one model (config.json "
               "+ weights). A relative path not found from the working "
               "directory is also tried beside the binary's source tree, so "
               "the bundled models are found from anywhere.");
  flags.String("grpc-address", &f.grpc_address,
               "HOST:PORT where gRPC listens (0.0.0.0:PORT for every "
               "interface; port 0 picks a free one).");
  flags.String("metrics-address", &f.metrics_address,
               "HOST:PORT where Prometheus metrics are served at /metrics, "
               "in plain HTTP with no authentication: keep it on a private "
               "interface. Empty turns the endpoint off.");
  flags.String("tls-cert", &f.tls_cert,
               "PEM certificate chain of the server (with --tls-key): gRPC "
               "is served over TLS. Empty: plaintext.");
  flags.String("tls-key", &f.tls_key,
               "PEM private key (unencrypted) of --tls-cert.");
  flags.String("tls-client-ca", &f.tls_client_ca,
               "PEM file of the CA(s) that sign client certificates: mutual "
               "TLS, every client must present a certificate they signed. "
               "Needs --tls-cert and --tls-key.");
  flags.String("auth-tokens-file", &f.auth_tokens_file,
               "File of bearer tokens, one per line ('#' comment lines and "
               "blank lines ignored; at least 16 characters each): every "
               "rnnserve.v1.Inference call must send 'authorization: Bearer "
               "<token>' with one of them. Health and reflection stay open. "
               "Read once at start-up. Empty: no authentication.");
  flags.Int("max-batch-size", &f.max_batch_size,
            "Most sequences (or streaming chunks) run together in one "
            "engine call.",
            1, 1024);
  flags.Duration("max-queue-delay", &f.max_queue_delay,
                 "How long a queued call may wait for its batch to fill. 0 "
                 "runs what is queued as soon as a compute thread is free.");
  flags.Int("max-queued-items", &f.max_queued_items,
            "Sequences or chunks that may wait per model and call kind; "
            "beyond it calls get RESOURCE_EXHAUSTED at once.",
            1, 1 << 24);
  flags.Int("max-queued-steps", &f.max_queued_steps,
            "Time steps (summed over every queued sequence or chunk) that "
            "may wait per model and call kind; beyond it calls get "
            "RESOURCE_EXHAUSTED at once, so a client of long sequences "
            "cannot queue minutes of work ahead of everyone else. A call "
            "larger than the bound still runs when the queue is empty. The "
            "default, 1,000,000, is about a second of compute for one compute "
            "thread on the bundled fashion_lstm (0.75 to 1.5 million steps/s "
            "measured with engine_bench); scale it with your model's speed "
            "and the queueing delay you accept.",
            1, int64_t{1} << 40);
  flags.Int("max-queued-values", &f.max_queued_values,
            "Input floats (steps x input size, 4 bytes each) that may wait "
            "per model and call kind: bounds the memory queued calls hold, "
            "for models with wide inputs; beyond it calls get "
            "RESOURCE_EXHAUSTED at once. The default, 32,000,000 (128 MiB), "
            "lets --max-queued-steps bind first for the bundled models (28 "
            "and 1 inputs per step).",
            1, int64_t{1} << 40);
  flags.Int("compute-threads", &f.compute_threads,
            "Threads that run batches (default: the number of CPUs).", 1, 256);
  flags.Int("engine-threads", &f.engine_threads,
            "Threads oneDNN may use inside one batch; 1 suits small "
            "recurrent batches best.",
            1, 256);
  flags.Int("max-sequence-length", &f.max_sequence_length,
            "Most time steps in one sequence or streaming chunk.", 1, 1 << 24);
  flags.Int("max-sequences-per-request", &f.max_sequences_per_request,
            "Most sequences in one Classify request.", 1, 1 << 20);
  flags.Int("max-message-bytes", &f.max_message_bytes,
            "Largest request message accepted.", 1024, INT32_MAX);
  flags.Int("max-streams-per-connection", &f.max_streams_per_connection,
            "Most calls (streams) open at once on one client connection; "
            "the client's further calls wait for one to end.",
            1, INT32_MAX);
  flags.Duration("keepalive-time", &f.keepalive_time,
                 "A client connection silent this long is pinged; one that "
                 "does not answer within 20s is closed, ending its streams "
                 "so their sessions can be resumed elsewhere.");
  flags.Duration("session-idle-ttl", &f.session_idle_ttl,
                 "A streaming session not attached to any call expires after "
                 "this long.");
  flags.Int("max-sessions", &f.max_sessions,
            "Most sessions held at once; new sessions beyond it are refused "
            "(active ones are never evicted).",
            1, INT32_MAX);
  flags.Duration("shutdown-grace", &f.shutdown_grace,
                 "On SIGTERM or SIGINT, how long calls in flight may take to "
                 "finish before they are cancelled.");
  flags.String("warmup-steps", &f.warmup_steps,
               "Comma-separated step counts whose engine plans are prepared "
               "for every batch size at start-up.");
  flags.Bool("version", &f.version, "Prints the version and exits.");
}

absl::StatusOr<std::vector<int>> ParseSteps(const std::string& text) {
  std::vector<int> steps;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int n = 0;
    if (!absl::SimpleAtoi(part, &n) || n < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "flag --warmup-steps: expected positive integers separated by "
          "commas, got \"",
          text, "\""));
    }
    steps.push_back(n);
  }
  return steps;
}

// How the gRPC port is protected, for the start-up line. Never the tokens.
std::string SecurityLine(const service::ServerOptions& options) {
  const std::string tls = !options.tls.enabled() ? "plaintext"
                          : options.tls.mutual() ? "mutual TLS"
                                                 : "TLS";
  const std::string auth =
      options.bearer_tokens.has_value()
          ? absl::StrCat(options.bearer_tokens->size(), " bearer token(s)")
          : std::string("no authentication");
  return absl::StrCat(tls, ", ", auth);
}

// A relative repository path that is not found from the working directory
// is tried beside the source tree the binary was built from.
std::filesystem::path ResolveRepository(const std::string& flag) {
  std::filesystem::path path(flag);
  std::error_code ec;
  if (path.is_absolute() || std::filesystem::exists(path, ec)) return path;
  const std::filesystem::path beside =
      std::filesystem::path(RNNSERVE_SOURCE_DIR) / path;
  return std::filesystem::exists(beside, ec) ? beside : path;
}

int Run(int argc, char** argv) {
  // Debian's abseil checks every lock for deadlock cycles, which cost a
  // tenth of the server's CPU per call; the tests keep the check on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  Flags f;
  FlagSet flags("rnnserve [flags]",
                "Serves recurrent models (LSTM, GRU, RNN) trained in PyTorch "
                "over gRPC, with batched oneDNN inference and streaming "
                "sessions.");
  AddFlags(flags, f);
  auto parsed = flags.Parse(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.ok()) {
    std::fprintf(stderr, "rnnserve: %s\n", parsed.status().ToString().c_str());
    return 2;
  }
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return 0;
  }
  if (f.version) {
    std::printf("rnnserve %s (%s)\n", RNNSERVE_VERSION, RNNSERVE_GIT_COMMIT);
    return 0;
  }
  if (!parsed->empty()) {
    std::fprintf(stderr, "rnnserve: unexpected argument \"%s\" (see --help)\n",
                 parsed->front().c_str());
    return 2;
  }
  auto warmup = ParseSteps(f.warmup_steps);
  if (!warmup.ok()) {
    std::fprintf(stderr, "rnnserve: %s\n",
                 std::string(warmup.status().message()).c_str());
    return 2;
  }
  if (f.keepalive_time < absl::Seconds(1)) {
    std::fprintf(stderr, "rnnserve: flag --keepalive-time: at least 1s\n");
    return 2;
  }
  // Security files are read before the models, so that a mistake in them
  // is reported at once.
  auto tls = service::LoadTlsOptions({f.tls_cert, f.tls_key, f.tls_client_ca});
  if (!tls.ok()) {
    std::fprintf(stderr, "rnnserve: %s\n",
                 std::string(tls.status().message()).c_str());
    return 2;
  }
  std::optional<service::BearerTokens> tokens;
  if (!f.auth_tokens_file.empty()) {
    auto loaded = service::BearerTokens::Load(f.auth_tokens_file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "rnnserve: --auth-tokens-file: %s\n",
                   std::string(loaded.status().message()).c_str());
      return 2;
    }
    tokens = *std::move(loaded);
  }

  // Signals are taken by sigwait below, so every thread must block them;
  // threads inherit the mask of the thread that starts them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::filesystem::path repository =
      ResolveRepository(f.model_repository);
  auto models = model::LoadModelRepository(repository);
  if (!models.ok()) {
    Log("cannot load the model repository: ", models.status().message());
    return 1;
  }
  std::vector<model::ModelConfig> configs;
  for (const model::Model& m : *models) configs.push_back(m.config);
  metrics::Metrics metrics({RNNSERVE_VERSION, RNNSERVE_GIT_COMMIT}, configs);
  int metrics_port = 0;
  if (!f.metrics_address.empty()) {
    auto port = metrics.Serve(f.metrics_address);
    if (!port.ok()) {
      Log("cannot serve metrics: ", port.status().message());
      return 1;
    }
    metrics_port = *port;
  }

  service::ServerOptions options;
  options.grpc_address = f.grpc_address;
  options.queue.max_batch_size = static_cast<int>(f.max_batch_size);
  options.queue.max_queue_delay = f.max_queue_delay;
  options.queue.max_queued_items = static_cast<int>(f.max_queued_items);
  options.queue.max_queued_steps = f.max_queued_steps;
  options.queue.max_queued_values = f.max_queued_values;
  options.compute_threads = static_cast<int>(f.compute_threads);
  options.engine_threads = static_cast<int>(f.engine_threads);
  options.limits.max_steps = static_cast<int>(f.max_sequence_length);
  options.limits.max_sequences_per_request =
      static_cast<int>(f.max_sequences_per_request);
  options.max_message_bytes = static_cast<int>(f.max_message_bytes);
  options.sessions.idle_ttl = f.session_idle_ttl;
  options.sessions.max_sessions = f.max_sessions;
  options.warmup_steps = *warmup;
  options.tls = *std::move(tls);
  options.bearer_tokens = std::move(tokens);
  options.max_streams_per_connection =
      static_cast<int>(f.max_streams_per_connection);
  options.keepalive_time = f.keepalive_time;

  RealClock clock;
  auto server = service::Server::Start(options, *models, &metrics, clock);
  if (!server.ok()) {
    Log("cannot start: ", server.status().message());
    return 1;
  }
  std::vector<std::string> names;
  for (const model::ModelConfig& c : configs) names.push_back(c.name);
  Log("serving ", names.size(), " model(s) [", absl::StrJoin(names, ", "),
      "] from ", repository.string(), "; gRPC on port ", (*server)->port(),
      " (", f.grpc_address, "), metrics ",
      f.metrics_address.empty() ? std::string("off")
                                : absl::StrCat("on port ", metrics_port, " (",
                                               f.metrics_address, ")"),
      "; max batch ", f.max_batch_size, ", queue delay ",
      absl::FormatDuration(f.max_queue_delay), ", ", f.compute_threads,
      " compute thread(s) x ", f.engine_threads,
      " engine thread(s), session TTL ",
      absl::FormatDuration(f.session_idle_ttl), ", max sessions ",
      f.max_sessions, "; ", SecurityLine(options));
  if (options.bearer_tokens.has_value() && !options.tls.enabled()) {
    Log("warning: bearer tokens travel in clear text without TLS; use "
        "--tls-cert/--tls-key, or a TLS-terminating proxy on this host");
  }

  int signal = 0;
  sigwait(&signals, &signal);
  Log("received ", signal == SIGTERM ? "SIGTERM" : "SIGINT",
      "; not serving, draining for up to ",
      absl::FormatDuration(f.shutdown_grace));
  const absl::Time start = absl::Now();
  (*server)->Shutdown(f.shutdown_grace);
  Log("stopped after ", absl::FormatDuration(absl::Now() - start));
  return 0;
}

}  // namespace
}  // namespace rnnserve

int main(int argc, char** argv) { return rnnserve::Run(argc, argv); }
