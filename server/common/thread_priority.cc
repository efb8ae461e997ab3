#include "server/common/thread_priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace rnnserve {

absl::Status SetThisThreadNice(int nice) {
  // On Linux a nice value belongs to a thread: PRIO_PROCESS with a thread
  // id sets that thread's alone.
  const auto tid = static_cast<id_t>(syscall(SYS_gettid));
  if (setpriority(PRIO_PROCESS, tid, nice) != 0) {
    const int error = errno;
    return absl::PermissionDeniedError(
        absl::StrCat("could not set the thread's nice value to ", nice, ": ",
                     std::strerror(error)));
  }
  return absl::OkStatus();
}

}  // namespace rnnserve
