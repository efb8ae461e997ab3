// Metrics' construction, the server-wide series and the /metrics endpoint.
// The series of model versions are in model_families.cc, the session
// store's in store_families.cc.
#include "server/metrics/metrics.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <exception>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "prometheus/text_serializer.h"
#include "server/metrics/metrics_impl.h"

namespace rnnserve::metrics {
namespace {

// The host to connect to for reaching a listener bound to `address`
// ("host:port", "[v6]:port", or a port alone): the bound host, or loopback
// for a wildcard.
std::string LocalHost(const std::string& address) {
  const size_t colon = address.rfind(':');
  std::string host =
      colon == std::string::npos ? std::string() : address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    return host == "::" ? "::1" : host;
  }
  if (host.empty() || host == "0.0.0.0" || host == "+") return "127.0.0.1";
  return host;
}

// Opens and at once closes a TCP connection to host:port; failures are
// ignored (the listener may be gone already).
void Poke(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) !=
      0) {
    return;
  }
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    // Bounds connect(): the listener is on this machine.
    timeval timeout{0, 100 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    (void)connect(fd, found->ai_addr, found->ai_addrlen);
    close(fd);
  }
  freeaddrinfo(found);
}

}  // namespace

Metrics::Metrics(const BuildInfo& build,
                 const std::vector<model::ModelConfig>& models)
    : impl_(std::make_unique<Impl>()) {
  using prometheus::Counter;
  using prometheus::Gauge;
  prometheus::Registry& r = *impl_->registry;

  Build<Gauge>(r, "rnnserve_build_info",
               "Always 1; the labels say which build of rnnserve runs.")
      .Add({{"version", build.version}, {"git_commit", build.git_commit}})
      .Set(1);
  impl_->sessions_max =
      &Build<Gauge>(r, "rnnserve_sessions_max",
                    "Most streaming sessions the server holds at once; "
                    "new sessions beyond it are refused.")
           .Add({});

  AddStoreFamilies(r);

  auto& auth_refused = Build<Counter>(
      r, "rnnserve_auth_refused_total",
      "Calls refused for a missing or wrong bearer token, by method.");
  // rnnserve.v1's methods, then the Open Inference Protocol's.
  for (const char* rpc : {"Classify", "Regress", "RegressChunk", "ListModels",
                          "GetModel", "ModelInfer", "ServerLive", "ServerReady",
                          "ModelReady", "ServerMetadata", "ModelMetadata"}) {
    impl_->auth_refused[rpc] = &auth_refused.Add({{"method", rpc}});
  }

  AddModelFamilies(r);
  for (const model::ModelConfig& config : models) AddModelVersion(config);
}

Metrics::~Metrics() { StopServing(); }

void Metrics::StopServing() {
  std::unique_ptr<prometheus::Exposer> exposer;
  std::string host;
  int port = 0;
  {
    absl::MutexLock lock(&impl_->mu);
    exposer = std::move(impl_->exposer);
    host = impl_->host;
    port = impl_->port;
  }
  if (exposer == nullptr) return;
  // civetweb's listening thread checks its stop flag only between polls
  // of its sockets, which last up to 2 s each: a process exiting would wait
  // that long. A connection ends the poll at once, so while the exposer
  // stops on another thread, this one connects every few milliseconds.
  absl::Notification stopped;
  std::thread stopper([&] {
    exposer.reset();
    stopped.Notify();
  });
  while (!stopped.WaitForNotificationWithTimeout(absl::Milliseconds(5))) {
    Poke(host, port);
  }
  stopper.join();
}

absl::StatusOr<int> Metrics::Serve(const std::string& address) {
  absl::MutexLock lock(&impl_->mu);
  if (impl_->exposer != nullptr) {
    return absl::FailedPreconditionError("metrics: already serving");
  }
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot serve on --metrics-address \"", address,
                     "\": ", e.what()));
  }
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::InternalError(
        absl::StrCat("metrics: no listening port for \"", address, "\""));
  }
  exposer->RegisterCollectable(impl_->registry);
  exposer->RegisterCollectable(impl_->process);
  impl_->exposer = std::move(exposer);
  impl_->host = LocalHost(address);
  impl_->port = ports.front();
  return ports.front();
}

std::string Metrics::Render() const {
  std::vector<prometheus::MetricFamily> families = impl_->registry->Collect();
  std::vector<prometheus::MetricFamily> process = impl_->process->Collect();
  families.insert(families.end(), std::make_move_iterator(process.begin()),
                  std::make_move_iterator(process.end()));
  return prometheus::TextSerializer().Serialize(families);
}

void Metrics::SetMaxSessions(int64_t sessions) {
  impl_->sessions_max->Set(static_cast<double>(sessions));
}

void Metrics::AuthRefused(const std::string& rpc) {
  auto it = impl_->auth_refused.find(rpc);
  if (it != impl_->auth_refused.end()) it->second->Increment();
}

}  // namespace rnnserve::metrics
