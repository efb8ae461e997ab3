#include "server/options_from_flags.h"

#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/common/file_reader.h"
#include "server/sessions/redis_connection.h"

namespace rnnserve {
namespace {

absl::Status FlagError(const char* flag, absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat("flag --", flag, ": ", message));
}

absl::StatusOr<std::vector<int>> ParseSteps(const std::string& text) {
  std::vector<int> steps;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int n = 0;
    if (!absl::SimpleAtoi(part, &n) || n < 1) {
      return FlagError("warmup-steps",
                       absl::StrCat("expected positive integers separated by "
                                    "commas, got \"",
                                    text, "\""));
    }
    steps.push_back(n);
  }
  return steps;
}

void AddSecurityFlags(FlagSet& flags, ServerFlags& f) {
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
               "rnnserve.v1.Inference and Open Inference Protocol call must "
               "send 'authorization: Bearer "
               "<token>' with one of them. Health and reflection stay open. "
               "Read once at start-up. Empty: no authentication.");
}

void AddLimitFlags(FlagSet& flags, ServerFlags& f) {
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
  flags.Int("slice-steps", &f.slice_steps,
            "Long work runs in slices of about this many time steps (summed "
            "over the sequences of a batch), and calls queued meanwhile are "
            "answered between the slices: a call whose sequences have more "
            "steps in all waits in a lane of its own, and the two lanes share "
            "the compute by steps run, so a short call waits for at most one "
            "slice of long work. Applies to unidirectional models (a "
            "bidirectional one needs each sequence whole) and to streaming "
            "chunks; the answer is the same as in one pass. The default, "
            "512, is under a millisecond of compute on the bundled "
            "fashion_lstm (8 steps of 64 sequences); smaller is fairer, "
            "larger runs fewer executions. Scale it with your model's speed. "
            "0 turns slicing off.",
            0, int64_t{1} << 40);
  flags.Int("compute-threads", &f.compute_threads,
            "Threads that run batches (default: the number of CPUs).", 1, 256);
  flags.Int("compute-nice", &f.compute_nice,
            "Nice value of the compute threads (0 to 19; higher yields "
            "more). Above 0, the threads that receive and answer calls "
            "preempt a busy compute thread at once instead of waiting for its "
            "time slice, which cuts a short call's latency when the CPUs are "
            "busy (with --slice-steps, see BENCHMARKS.md). Within a container "
            "it orders only the server's own threads; on a shared host it "
            "also yields to other processes. 0 leaves them as they are.",
            0, 19);
  flags.Int("engine-threads", &f.engine_threads,
            "Threads oneDNN may use inside one batch; 1 suits small "
            "recurrent batches best.",
            1, 256);
  flags.Int("max-sequence-length", &f.max_sequence_length,
            "Most time steps in one sequence or streaming chunk.", 1, 1 << 24);
  flags.Int("max-sequences-per-request", &f.max_sequences_per_request,
            "Most sequences in one Classify request (or in the batch of an "
            "Open Inference Protocol ModelInfer).",
            1, 1 << 20);
  flags.Int("max-message-bytes", &f.max_message_bytes,
            "Largest request message accepted.", 1024, INT32_MAX);
  flags.Int("max-server-memory-bytes", &f.max_server_memory_bytes,
            "Most memory gRPC may use for its connections' buffers (messages "
            "being received and sent); past it, it stops reading from "
            "connections and refuses new calls until memory is freed "
            "(1073741824 = 1 GiB).",
            16 << 20, int64_t{1} << 40);
  flags.Int("max-streams-per-connection", &f.max_streams_per_connection,
            "Most calls (streams) open at once on one client connection; "
            "the client's further calls wait for one to end.",
            1, INT32_MAX);
  flags.Duration("keepalive-time", &f.keepalive_time,
                 "A client connection silent this long is pinged; one that "
                 "does not answer within 20s is closed, ending its streams "
                 "so their sessions can be resumed elsewhere. At least 1s.");
  flags.Duration("session-idle-ttl", &f.session_idle_ttl,
                 "A streaming session expires after this long without a "
                 "chunk or a resume (with Redis, Redis expires it).");
  flags.Int("max-sessions", &f.max_sessions,
            "Most sessions held at once; new sessions beyond it are refused "
            "(active ones are never evicted). With --session-store redis, a "
            "bound of the whole cluster: give every replica the same value.",
            1, INT32_MAX);
  flags.Int("max-sessions-per-token", &f.max_sessions_per_token,
            "With --auth-tokens-file: most sessions one bearer token may "
            "hold at once (a tenth of the default --max-sessions), so that "
            "one client cannot fill the store for everyone; beyond it its "
            "new sessions get RESOURCE_EXHAUSTED. A session can be resumed "
            "only with the token that created it. 0: no limit. Without "
            "--auth-tokens-file no quota applies. With --session-store "
            "redis, a bound of the whole cluster.",
            0, INT32_MAX);
  flags.Int("max-calls-per-token", &f.max_calls_per_token,
            "With --auth-tokens-file: most calls one bearer token may have "
            "in flight at once (unary calls until answered; a Regress "
            "stream counts as one call while it is open); beyond it its "
            "calls get RESOURCE_EXHAUSTED. 0: no limit. Without "
            "--auth-tokens-file no quota applies.",
            0, INT32_MAX);
}

void AddShutdownFlags(FlagSet& flags, ServerFlags& f) {
  flags.Duration("drain-delay", &f.drain_delay,
                 "On SIGTERM or SIGINT, health turns NOT_SERVING at once but "
                 "calls are still served this long, so that load balancers "
                 "and health-checking clients stop sending calls here before "
                 "any is refused. A second signal ends it early. Match it to "
                 "how long your load balancer takes to notice.");
  flags.Duration("shutdown-grace", &f.shutdown_grace,
                 "After the drain delay, new calls get UNAVAILABLE (\"server "
                 "is shutting down\") and open Regress streams end with "
                 "UNAVAILABLE (resume the session with its token) after their "
                 "chunk in flight; calls in flight get this long to finish "
                 "before they are cancelled.");
}

absl::Status SessionStoreFromFlags(const ServerFlags& f,
                                   service::ServerOptions& s) {
  if (f.session_store == "memory") {
    if (!f.session_store_password_file.empty()) {
      return FlagError("session-store-password-file",
                       "only with --session-store redis://...");
    }
    return absl::OkStatus();
  }
  absl::StatusOr<sessions::RedisAddress> address =
      sessions::ParseRedisUrl(f.session_store, "flag --session-store");
  if (!address.ok()) return address.status();
  if (f.session_store_timeout <= absl::ZeroDuration()) {
    return FlagError("session-store-timeout", "must be positive");
  }
  sessions::RedisConnection::Options redis;
  redis.address = *address;
  redis.connect_timeout = f.session_store_timeout;
  redis.io_timeout = f.session_store_timeout;
  if (!f.session_store_password_file.empty()) {
    absl::StatusOr<std::string> password =
        ReadWholeFile(f.session_store_password_file, 4096);
    if (!password.ok()) {
      return FlagError("session-store-password-file",
                       password.status().message());
    }
    while (!password->empty() &&
           (password->back() == '\n' || password->back() == '\r')) {
      password->pop_back();
    }
    redis.password = *std::move(password);
  }
  s.redis_sessions = std::move(redis);
  return absl::OkStatus();
}

}  // namespace

void AddServerFlags(FlagSet& flags, ServerFlags& f) {
  flags.String("model-repository", &f.model_repository,
               "Folder of models: every sub-folder is one model (config.json "
               "+ weights), or holds its numbered versions (1/, 2/, ...; "
               "model.json's version_policy picks those served, default "
               "the newest). A relative path not found from the working "
               "directory is also tried beside the binary's source tree, so "
               "the bundled models are found from anywhere.");
  flags.String("model-control-mode", &f.model_control_mode,
               "How the server notices changes to the model repository "
               "while it serves: 'none' (read at start-up, then again on "
               "SIGHUP or a call of the rnnserve.v1.Repository service) or "
               "'poll' (also every --repository-poll-interval). A rescan "
               "loads new and changed versions, each warmed up before it "
               "takes calls, and unloads those the version policy no longer "
               "selects; sessions stay on the version they started on.");
  flags.Duration("repository-poll-interval", &f.repository_poll_interval,
                 "With --model-control-mode poll: how often the repository "
                 "is rescanned. A new or changed version is loaded once its "
                 "files stayed unchanged for one interval, so that a copy "
                 "still running is not loaded half-written.");
  flags.String("admin-tokens-file", &f.admin_tokens_file,
               "File of admin tokens (the format of --auth-tokens-file): "
               "turns on the rnnserve.v1.Repository service (RepositoryIndex, "
               "LoadModel, UnloadModel), whose every call must send "
               "'authorization: Bearer <admin token>'. Inference tokens are "
               "not admin tokens. Empty: the service is off (UNIMPLEMENTED).");
  flags.String("grpc-address", &f.grpc_address,
               "HOST:PORT where gRPC listens (0.0.0.0:PORT for every "
               "interface; port 0 picks a free one).");
  flags.String("metrics-address", &f.metrics_address,
               "HOST:PORT where Prometheus metrics are served at /metrics, "
               "in plain HTTP with no authentication: keep it on a private "
               "interface. Empty turns the endpoint off.");
  flags.String("session-store", &f.session_store,
               "Where streaming sessions live: \"memory\" (this process; a "
               "restart loses them, and a session resumes only on the "
               "replica that holds it) or redis://HOST[:PORT][/DB], a Redis "
               "every replica shares: any replica resumes any session, and "
               "sessions outlive replicas.");
  flags.String("session-store-password-file", &f.session_store_password_file,
               "File holding the Redis password (AUTH), for --session-store "
               "redis://; trailing newlines are ignored.");
  flags.Duration("session-store-timeout", &f.session_store_timeout,
                 "Longest a Redis connect, read or write may take; past it "
                 "the chunk gets UNAVAILABLE.");
  AddSecurityFlags(flags, f);
  AddLimitFlags(flags, f);
  AddShutdownFlags(flags, f);
  flags.String("warmup-steps", &f.warmup_steps,
               "Comma-separated step counts that run as one execution (for a "
               "unidirectional model, each count's remainder by 64 joins the "
               "step buckets 1, 2, 4, ..., 64); every plan a batch of up to "
               "--max-batch-size may need is prepared at start-up, so requests "
               "make none. A bidirectional model runs exact lengths: these are "
               "prepared, others are made on first use and kept in the plan "
               "cache.");
  flags.Bool("version", &f.version, "Prints the version and exits.");
}

absl::StatusOr<ProgramOptions> OptionsFromFlags(const ServerFlags& f) {
  ProgramOptions o;
  o.model_repository = f.model_repository;
  o.metrics_address = f.metrics_address;
  o.drain_delay = f.drain_delay;
  o.shutdown_grace = f.shutdown_grace;
  service::ServerOptions& s = o.server;
  s.grpc_address = f.grpc_address;
  s.queue.max_batch_size = static_cast<int>(f.max_batch_size);
  s.queue.max_queue_delay = f.max_queue_delay;
  s.queue.max_queued_items = static_cast<int>(f.max_queued_items);
  s.queue.max_queued_steps = f.max_queued_steps;
  s.queue.max_queued_values = f.max_queued_values;
  s.queue.slice_steps = f.slice_steps;
  s.compute_threads = static_cast<int>(f.compute_threads);
  s.engine_threads = static_cast<int>(f.engine_threads);
  s.compute_nice = static_cast<int>(f.compute_nice);
  s.limits.max_steps = static_cast<int>(f.max_sequence_length);
  s.limits.max_sequences_per_request =
      static_cast<int>(f.max_sequences_per_request);
  s.max_message_bytes = static_cast<int>(f.max_message_bytes);
  s.max_server_memory_bytes = f.max_server_memory_bytes;
  s.sessions.idle_ttl = f.session_idle_ttl;
  s.sessions.max_sessions = f.max_sessions;
  s.sessions.max_sessions_per_owner = f.max_sessions_per_token;
  s.max_calls_per_token = f.max_calls_per_token;
  absl::Status store = SessionStoreFromFlags(f, s);
  if (!store.ok()) return store;
  s.max_streams_per_connection = static_cast<int>(f.max_streams_per_connection);
  if (f.keepalive_time < absl::Seconds(1)) {
    return FlagError("keepalive-time",
                     absl::StrCat("at least 1s, got ",
                                  absl::FormatDuration(f.keepalive_time)));
  }
  s.keepalive_time = f.keepalive_time;
  absl::StatusOr<std::vector<int>> warmup = ParseSteps(f.warmup_steps);
  if (!warmup.ok()) return warmup.status();
  s.warmup_steps = *std::move(warmup);
  // Security files are read before the models, so that a mistake in them
  // is reported at once. Their messages name the flags.
  absl::StatusOr<service::TlsOptions> tls =
      service::LoadTlsOptions({f.tls_cert, f.tls_key, f.tls_client_ca});
  if (!tls.ok()) return absl::InvalidArgumentError(tls.status().message());
  s.tls = *std::move(tls);
  if (!f.auth_tokens_file.empty()) {
    absl::StatusOr<service::BearerTokens> tokens =
        service::BearerTokens::Load(f.auth_tokens_file);
    if (!tokens.ok()) {
      return FlagError("auth-tokens-file", tokens.status().message());
    }
    s.bearer_tokens = *std::move(tokens);
  }
  if (!f.admin_tokens_file.empty()) {
    absl::StatusOr<service::BearerTokens> tokens =
        service::BearerTokens::Load(f.admin_tokens_file);
    if (!tokens.ok()) {
      return FlagError("admin-tokens-file", tokens.status().message());
    }
    s.admin_tokens = *std::move(tokens);
  }
  if (f.model_control_mode != "none" && f.model_control_mode != "poll") {
    return FlagError(
        "model-control-mode",
        absl::StrCat("'none' or 'poll', got '", f.model_control_mode, "'"));
  }
  s.repository.poll = f.model_control_mode == "poll";
  if (f.repository_poll_interval < absl::Milliseconds(100)) {
    return FlagError(
        "repository-poll-interval",
        absl::StrCat("at least 100ms, got ",
                     absl::FormatDuration(f.repository_poll_interval)));
  }
  s.repository.poll_interval = f.repository_poll_interval;
  return o;
}

}  // namespace rnnserve
