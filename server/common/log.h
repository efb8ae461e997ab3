// One line per event on stderr: "2026-11-28T10:00:00.123Z rnnserve: ...".
#ifndef RNNSERVE_SERVER_COMMON_LOG_H_
#define RNNSERVE_SERVER_COMMON_LOG_H_

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rnnserve {

// Writes the line with one write(2), so that lines from several threads do
// not interleave. Thread-safe.
template <typename... Parts>
void Log(const Parts&... parts) {
  const std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " rnnserve: ", parts..., "\n");
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace rnnserve

#endif  // RNNSERVE_SERVER_COMMON_LOG_H_
