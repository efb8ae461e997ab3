// Thread priority: lets throughput work yield the CPU to latency work.
#ifndef RNNSERVE_SERVER_COMMON_THREAD_PRIORITY_H_
#define RNNSERVE_SERVER_COMMON_THREAD_PRIORITY_H_

#include "absl/status/status.h"

namespace rnnserve {

// Sets the calling thread's nice value (Linux: per thread; 0 is the
// default, up to 19 yields most). Raising it needs no privilege; lowering
// it below the process's may. Other threads keep theirs.
absl::Status SetThisThreadNice(int nice);

}  // namespace rnnserve

#endif  // RNNSERVE_SERVER_COMMON_THREAD_PRIORITY_H_
