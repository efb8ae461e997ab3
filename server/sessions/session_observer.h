// What the session store tells the rest of the server about its sessions,
// e.g. so that metrics can count them. The store knows nothing of how the
// events are recorded: the metrics room implements this interface, so that
// sessions/ stays plain C++ and metrics/ depends on this header alone.
#ifndef RNNSERVE_SERVER_SESSIONS_SESSION_OBSERVER_H_
#define RNNSERVE_SERVER_SESSIONS_SESSION_OBSERVER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace rnnserve::sessions {

// Told of session events by model and model version. Called without the
// store's lock held, from any thread: implementations must be thread-safe. A
// session counts as created only once its first chunk commits; a provisional
// session dropped before that (its first chunk failed) causes no event at
// all. `version` is the version the session runs on as the store recorded
// it; empty where the store does not know it: a session stored before
// versions were recorded, and a new session the store refuses before its
// first commit (the memory store's Create).
class SessionObserver {
 public:
  virtual ~SessionObserver() = default;
  virtual void OnCreated(const std::string& model,
                         const std::string& version) = 0;
  virtual void OnResumed(const std::string& model,
                         const std::string& version) = 0;
  virtual void OnExpired(const std::string& model,
                         const std::string& version) = 0;
  // A new session refused: the store, or the caller's quota, is full.
  virtual void OnRefused(const std::string& model,
                         const std::string& version) = 0;
  virtual void OnEnded(const std::string& model,
                       const std::string& version) = 0;
  // A chunk's commit was refused: another call had taken its session over.
  virtual void OnTakenOver(const std::string& /*model*/,
                           const std::string& /*version*/) {}
  // A retried chunk was answered again from its stored answer.
  virtual void OnReplayed(const std::string& /*model*/,
                          const std::string& /*version*/) {}

  // The store itself. One operation ("attach", "commit", "probe"), a round
  // trip to a remote store, took `latency` and succeeded or failed.
  virtual void OnStoreOperation(std::string_view /*operation*/,
                                absl::Duration /*latency*/, bool /*ok*/) {}
  // The store answers (or not), and holds `sessions` (-1: unknown).
  virtual void OnStoreState(bool /*up*/, int64_t /*sessions*/) {}
};

}  // namespace rnnserve::sessions

#endif  // RNNSERVE_SERVER_SESSIONS_SESSION_OBSERVER_H_
