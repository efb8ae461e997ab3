#include "server/metrics/process_collector.h"

#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "prometheus/client_metric.h"
#include "prometheus/metric_type.h"

namespace rnnserve::metrics {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<uint64_t> ParseUint(const std::string& text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// The fields of /proc/<pid>/stat after the command name, which is in
// parentheses and may itself hold spaces or parentheses: the first is field
// 3 (state) in proc(5)'s numbering.
std::vector<std::string> StatFieldsAfterName(const std::string& stat) {
  std::vector<std::string> fields;
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream in(stat.substr(close + 1));
  for (std::string field; in >> field;) fields.push_back(std::move(field));
  return fields;
}

// proc(5) field number `n` (1-based) from StatFieldsAfterName's output.
std::optional<uint64_t> StatField(const std::vector<std::string>& fields,
                                  size_t n) {
  if (n < 3 || n - 3 >= fields.size()) return std::nullopt;
  return ParseUint(fields[n - 3]);
}

// The soft "Max open files" limit from /proc/<pid>/limits.
std::optional<uint64_t> MaxOpenFiles(const std::string& limits) {
  std::istringstream in(limits);
  static constexpr char kPrefix[] = "Max open files";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(kPrefix, 0) != 0) continue;
    std::istringstream rest(line.substr(sizeof(kPrefix) - 1));
    std::string soft;
    rest >> soft;
    return ParseUint(soft);  // "unlimited" gives nothing.
  }
  return std::nullopt;
}

// Boot time in seconds since the epoch, from the "btime" line of /proc/stat.
std::optional<uint64_t> BootTime(const std::string& stat) {
  std::istringstream in(stat);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("btime ", 0) != 0) continue;
    return ParseUint(line.substr(6));
  }
  return std::nullopt;
}

std::optional<double> CountEntries(const std::string& dir) {
  std::error_code error;
  std::filesystem::directory_iterator it(dir, error);
  if (error) return std::nullopt;
  double count = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) return std::nullopt;
    ++count;
  }
  return count;
}

void AddFamily(std::vector<prometheus::MetricFamily>& families,
               const char* name, const char* help, prometheus::MetricType type,
               const std::optional<double>& value) {
  if (!value) return;
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = *value;
  } else {
    metric.gauge.value = *value;
  }
  family.metric.push_back(std::move(metric));
  families.push_back(std::move(family));
}

}  // namespace

ProcessSample ReadProcessSample(const std::string& proc_dir,
                                const std::string& proc_stat) {
  ProcessSample sample;
  const double ticks_per_second = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_size = static_cast<double>(sysconf(_SC_PAGESIZE));

  if (std::optional<std::string> stat = ReadFile(proc_dir + "/stat")) {
    const std::vector<std::string> fields = StatFieldsAfterName(*stat);
    // proc(5): 14 utime, 15 stime, 22 starttime (ticks since boot),
    // 23 vsize (bytes), 24 rss (pages).
    const auto utime = StatField(fields, 14);
    const auto stime = StatField(fields, 15);
    if (utime && stime && ticks_per_second > 0) {
      sample.cpu_seconds =
          static_cast<double>(*utime + *stime) / ticks_per_second;
    }
    if (auto vsize = StatField(fields, 23)) {
      sample.virtual_memory_bytes = static_cast<double>(*vsize);
    }
    if (auto rss = StatField(fields, 24); rss && page_size > 0) {
      sample.resident_memory_bytes = static_cast<double>(*rss) * page_size;
    }
    const auto start_ticks = StatField(fields, 22);
    const std::optional<std::string> system_stat = ReadFile(proc_stat);
    const auto boot = system_stat ? BootTime(*system_stat) : std::nullopt;
    if (start_ticks && boot && ticks_per_second > 0) {
      sample.start_time_seconds =
          static_cast<double>(*boot) +
          static_cast<double>(*start_ticks) / ticks_per_second;
    }
  }
  if (std::optional<std::string> limits = ReadFile(proc_dir + "/limits")) {
    if (auto max_fds = MaxOpenFiles(*limits)) {
      sample.max_fds = static_cast<double>(*max_fds);
    }
  }
  sample.open_fds = CountEntries(proc_dir + "/fd");
  return sample;
}

ProcessCollector::ProcessCollector(std::string proc_dir, std::string proc_stat)
    : proc_dir_(std::move(proc_dir)), proc_stat_(std::move(proc_stat)) {}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  const ProcessSample s = ReadProcessSample(proc_dir_, proc_stat_);
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  AddFamily(families, "process_cpu_seconds_total",
            "User and system CPU time the process has used, in seconds.",
            MetricType::Counter, s.cpu_seconds);
  AddFamily(families, "process_resident_memory_bytes",
            "Resident set size of the process, in bytes.", MetricType::Gauge,
            s.resident_memory_bytes);
  AddFamily(families, "process_virtual_memory_bytes",
            "Virtual memory size of the process, in bytes.", MetricType::Gauge,
            s.virtual_memory_bytes);
  AddFamily(families, "process_open_fds",
            "File descriptors the process has open.", MetricType::Gauge,
            s.open_fds);
  AddFamily(families, "process_max_fds",
            "Soft limit on the process's open file descriptors.",
            MetricType::Gauge, s.max_fds);
  AddFamily(families, "process_start_time_seconds",
            "When the process started, in seconds since the Unix epoch.",
            MetricType::Gauge, s.start_time_seconds);
  return families;
}

}  // namespace rnnserve::metrics
