// The process_* series every official Prometheus client exports (CPU time,
// memory, file descriptors, start time), which prometheus-cpp lacks. Read
// from procfs at each scrape, so they cost nothing between scrapes.
#ifndef RNNSERVE_SERVER_METRICS_PROCESS_COLLECTOR_H_
#define RNNSERVE_SERVER_METRICS_PROCESS_COLLECTOR_H_

#include <optional>
#include <string>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace rnnserve::metrics {

// What procfs says of one process now. A field procfs did not give (or gave
// in a form not understood) is empty rather than a made-up number.
struct ProcessSample {
  std::optional<double> cpu_seconds;  // User plus system time.
  std::optional<double> resident_memory_bytes;
  std::optional<double> virtual_memory_bytes;
  std::optional<double> open_fds;
  std::optional<double> max_fds;  // Soft limit; empty when unlimited.
  std::optional<double> start_time_seconds;  // Since the Unix epoch.
};

// Reads `proc_dir` (a process's directory: stat, limits, fd/) and
// `proc_stat` (the system's stat file, for the boot time). Clock ticks and
// page size are this machine's.
ProcessSample ReadProcessSample(const std::string& proc_dir,
                                const std::string& proc_stat);

// A prometheus-cpp Collectable giving the process_* families; register it
// with the exposer beside the registry. Thread-safe (it keeps no state).
class ProcessCollector final : public prometheus::Collectable {
 public:
  // Defaults: this process.
  explicit ProcessCollector(std::string proc_dir = "/proc/self",
                            std::string proc_stat = "/proc/stat");

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const std::string proc_dir_;
  const std::string proc_stat_;
};

}  // namespace rnnserve::metrics

#endif  // RNNSERVE_SERVER_METRICS_PROCESS_COLLECTOR_H_
