// rnnserve: serves recurrent models over gRPC. Parses flags, loads the model
// repository, starts the server and serves until SIGTERM or SIGINT, then
// drains and stops.
#include <signal.h>
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "server/common/clock.h"
#include "server/common/flags.h"
#include "server/common/log.h"
#include "server/metrics/metrics.h"
#include "server/model/loader.h"
#include "server/options_from_flags.h"
#include "server/service/server.h"

namespace rnnserve {
namespace {

// How the gRPC port is protected, for the start-up line. Never the tokens.
std::string SecurityLine(const service::ServerOptions& options) {
  const std::string tls = !options.tls.enabled() ? "plaintext"
                          : options.tls.mutual() ? "mutual TLS"
                                                 : "TLS";
  const std::string auth =
      options.bearer_tokens.has_value()
          ? absl::StrCat(options.bearer_tokens->size(), " bearer token(s)")
          : std::string("no authentication");
  const std::string admin =
      options.admin_tokens.has_value()
          ? absl::StrCat("; repository service on, ",
                         options.admin_tokens->size(), " admin token(s)")
          : std::string("; repository service off");
  return absl::StrCat(tls, ", ", auth, admin);
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

const char* SignalName(int signal) {
  return signal == SIGTERM ? "SIGTERM" : "SIGINT";
}

// Waits for SIGTERM or SIGINT; a SIGHUP meanwhile rescans the repository.
int WaitForStop(const sigset_t& signals, service::Server& server) {
  while (true) {
    int signal = 0;
    sigwait(&signals, &signal);
    if (signal != SIGHUP) return signal;
    Log("received SIGHUP; rescanning the model repository");
    server.repository().RequestRescan();
  }
}

// Waits up to `delay` for one of `signals` other than SIGHUP; true if one
// came.
bool WaitForSignal(const sigset_t& signals, absl::Duration delay) {
  const absl::Time end = absl::Now() + delay;
  for (absl::Duration left = delay; left > absl::ZeroDuration();
       left = end - absl::Now()) {
    const timespec timeout = absl::ToTimespec(left);
    const int signal = sigtimedwait(&signals, nullptr, &timeout);
    // A rescan asked for while stopping is moot.
    if (signal == SIGHUP) continue;
    if (signal > 0) return true;
    if (errno != EINTR) return false;  // EAGAIN: the delay is over.
  }
  return false;
}

// Serves until SIGTERM or SIGINT (blocked in every thread), then: health
// NOT_SERVING at once; calls still served for the drain delay (a second
// signal ends it early); then Server::Shutdown with the grace.
void ServeUntilSignal(service::Server& server, const ProgramOptions& options,
                      const sigset_t& signals) {
  const int signal = WaitForStop(signals, server);
  server.MarkNotServing();
  Log("received ", SignalName(signal),
      "; health NOT_SERVING, still serving "
      "calls for the drain delay of ",
      absl::FormatDuration(options.drain_delay));
  const absl::Time start = absl::Now();
  if (WaitForSignal(signals, options.drain_delay)) {
    Log("received a second signal; ending the drain delay early");
  }
  Log("refusing new calls, ending open streams; calls in flight may take up "
      "to ",
      absl::FormatDuration(options.shutdown_grace));
  server.Shutdown(options.shutdown_grace);
  Log("stopped after ", absl::FormatDuration(absl::Now() - start));
}

// Parses the command line: the options, or the exit code when there is
// nothing to serve (--help, --version, a mistake).
absl::StatusOr<ProgramOptions> ParseCommandLine(int argc, char** argv,
                                                int& exit_code) {
  ServerFlags values;
  FlagSet flags("rnnserve [flags]",
                "Serves recurrent models (LSTM, GRU, RNN) trained in PyTorch "
                "over gRPC, with batched oneDNN inference and streaming "
                "sessions.");
  AddServerFlags(flags, values);
  exit_code = 2;
  auto parsed = flags.Parse(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.ok()) return parsed.status();
  exit_code = 0;
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return absl::CancelledError();
  }
  if (values.version) {
    std::printf("rnnserve %s (%s)\n", RNNSERVE_VERSION, RNNSERVE_GIT_COMMIT);
    return absl::CancelledError();
  }
  exit_code = 2;
  if (!parsed->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument \"", parsed->front(), "\" (see --help)"));
  }
  return OptionsFromFlags(values);
}

int Run(int argc, char** argv) {
  // Debian's abseil checks every lock for deadlock cycles, which cost a
  // tenth of the server's CPU per call; the tests keep the check on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  int exit_code = 0;
  absl::StatusOr<ProgramOptions> options =
      ParseCommandLine(argc, argv, exit_code);
  if (!options.ok()) {
    if (exit_code != 0) {
      std::fprintf(stderr, "rnnserve: %s\n",
                   std::string(options.status().message()).c_str());
    }
    return exit_code;
  }

  // Signals are taken by sigwait, so every thread must block them; threads
  // inherit the mask of the thread that starts them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::filesystem::path repository =
      ResolveRepository(options->model_repository);
  // Each version's series are added as it loads.
  metrics::Metrics metrics({RNNSERVE_VERSION, RNNSERVE_GIT_COMMIT}, {});
  int metrics_port = 0;
  if (!options->metrics_address.empty()) {
    auto port = metrics.Serve(options->metrics_address);
    if (!port.ok()) {
      Log("cannot serve metrics: ", port.status().message());
      return 1;
    }
    metrics_port = *port;
  }

  RealClock clock;
  service::ServerOptions& s = options->server;
  s.repository.root = repository;
  auto server = service::Server::Start(s, {}, &metrics, clock);
  if (!server.ok()) {
    Log("cannot start: ", server.status().message());
    return 1;
  }
  std::vector<std::string> names;
  const std::vector<service::ModelSet*> sets = (*server)->state().models.All();
  for (const service::ModelSet* set : sets) {
    for (const service::VersionInfo& v : set->Versions()) {
      names.push_back(absl::StrCat(set->name(), ":", v.version));
    }
  }
  const size_t model_count = sets.size();
  Log("serving ", model_count, " model(s)",
      names.size() == model_count
          ? std::string()
          : absl::StrCat(" (", names.size(), " versions)"),
      " [", absl::StrJoin(names, ", "), "] from ", repository.string(),
      s.repository.poll
          ? absl::StrCat(" (polled every ",
                         absl::FormatDuration(s.repository.poll_interval), ")")
          : std::string(),
      "; gRPC on port ", (*server)->port(), " (", s.grpc_address, "), metrics ",
      options->metrics_address.empty()
          ? std::string("off")
          : absl::StrCat("on port ", metrics_port, " (",
                         options->metrics_address, ")"),
      "; max batch ", s.queue.max_batch_size, ", queue delay ",
      absl::FormatDuration(s.queue.max_queue_delay), ", ", s.compute_threads,
      " compute thread(s) x ", s.engine_threads,
      " engine thread(s), session TTL ",
      absl::FormatDuration(s.sessions.idle_ttl), ", max sessions ",
      s.sessions.max_sessions, "; ", SecurityLine(s));
  if (s.bearer_tokens.has_value() && !s.tls.enabled()) {
    Log("warning: bearer tokens travel in clear text without TLS; use "
        "--tls-cert/--tls-key, or a TLS-terminating proxy on this host");
  }
  ServeUntilSignal(**server, *options, signals);
  return 0;
}

}  // namespace
}  // namespace rnnserve

int main(int argc, char** argv) { return rnnserve::Run(argc, argv); }
