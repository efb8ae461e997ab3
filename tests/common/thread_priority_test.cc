#include "server/common/thread_priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>

#include "gtest/gtest.h"

namespace rnnserve {
namespace {

int NiceOf(long tid) {
  return getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
}

TEST(ThreadPriorityTest, SetsTheCallingThreadsNiceValueOnly) {
  const long main_tid = syscall(SYS_gettid);
  const int main_nice = NiceOf(main_tid);
  int seen = -100;
  std::thread worker([&] {
    ASSERT_TRUE(SetThisThreadNice(main_nice + 5).ok());
    seen = NiceOf(syscall(SYS_gettid));
  });
  worker.join();
  EXPECT_EQ(seen, main_nice + 5);
  EXPECT_EQ(NiceOf(main_tid), main_nice);
}

}  // namespace
}  // namespace rnnserve
