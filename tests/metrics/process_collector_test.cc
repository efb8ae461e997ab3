#include "server/metrics/process_collector.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "prometheus/metric_family.h"

namespace rnnserve::metrics {
namespace {

namespace fs = std::filesystem;
using ::testing::Optional;

// A fake /proc/<pid> and /proc/stat with known numbers.
class FakeProcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("rnnserve_proc_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(root_ / "self" / "fd");
    for (const char* fd : {"0", "1", "2", "7", "9"}) {
      std::ofstream(root_ / "self" / "fd" / fd);
    }
    // A command name holding spaces and parentheses; fields 3 to 24.
    Write("self/stat",
          "4242 (rnn (serve) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
          "250 150 0 0 20 0 3 0 5000 123456789 300 18446744073709551615\n");
    Write("self/limits",
          "Limit                     Soft Limit           Hard Limit           "
          "Units     \n"
          "Max cpu time              unlimited            unlimited            "
          "seconds   \n"
          "Max open files            4096                 524288               "
          "files     \n");
    Write("stat", "cpu  1 2 3 4\nbtime 1700000000\nprocesses 99\n");
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(root_ / name) << text;
  }
  ProcessSample Read() const {
    return ReadProcessSample(root_ / "self", root_ / "stat");
  }

  fs::path root_;
  const double ticks_ = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_ = static_cast<double>(sysconf(_SC_PAGESIZE));
};

TEST_F(FakeProcTest, ReadsEveryField) {
  const ProcessSample s = Read();
  EXPECT_THAT(s.cpu_seconds, Optional(400 / ticks_));
  EXPECT_THAT(s.virtual_memory_bytes, Optional(123456789.0));
  EXPECT_THAT(s.resident_memory_bytes, Optional(300 * page_));
  EXPECT_THAT(s.start_time_seconds, Optional(1700000000 + 5000 / ticks_));
  EXPECT_THAT(s.open_fds, Optional(5.0));
  EXPECT_THAT(s.max_fds, Optional(4096.0));
}

TEST_F(FakeProcTest, UnlimitedOrMissingFieldsAreLeftOut) {
  Write("self/limits",
        "Max open files            unlimited  unlimited  files\n");
  Write("stat", "cpu  1 2 3 4\n");  // No btime.
  Write("self/stat", "4242 (short) S 1 2\n");
  const ProcessSample s = Read();
  EXPECT_FALSE(s.max_fds.has_value());
  EXPECT_FALSE(s.start_time_seconds.has_value());
  EXPECT_FALSE(s.cpu_seconds.has_value());
  EXPECT_FALSE(s.resident_memory_bytes.has_value());
  EXPECT_THAT(s.open_fds, Optional(5.0));
}

TEST_F(FakeProcTest, CollectorGivesFamiliesOfTheRightTypes) {
  ProcessCollector collector(root_ / "self", root_ / "stat");
  const std::vector<prometheus::MetricFamily> families = collector.Collect();
  ASSERT_EQ(families.size(), 6u);
  for (const prometheus::MetricFamily& f : families) {
    ASSERT_EQ(f.metric.size(), 1u) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
    if (f.name == "process_cpu_seconds_total") {
      EXPECT_EQ(f.type, prometheus::MetricType::Counter);
      EXPECT_DOUBLE_EQ(f.metric[0].counter.value, 400 / ticks_);
    } else {
      EXPECT_EQ(f.type, prometheus::MetricType::Gauge) << f.name;
    }
    if (f.name == "process_open_fds") {
      EXPECT_EQ(f.metric[0].gauge.value, 5.0);
    }
  }
}

TEST(ProcessCollectorTest, ThisProcessLooksSane) {
  const ProcessSample s = ReadProcessSample("/proc/self", "/proc/stat");
  ASSERT_TRUE(s.cpu_seconds && s.resident_memory_bytes &&
              s.virtual_memory_bytes && s.open_fds && s.max_fds &&
              s.start_time_seconds);
  EXPECT_GE(*s.cpu_seconds, 0);
  EXPECT_GT(*s.resident_memory_bytes, 0);
  EXPECT_GE(*s.virtual_memory_bytes, *s.resident_memory_bytes);
  EXPECT_GE(*s.open_fds, 3);  // stdin, stdout, stderr at least.
  EXPECT_GE(*s.max_fds, *s.open_fds);
  const double now = std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  // Started in the last hour, and not in the future (btime is whole seconds).
  EXPECT_LE(*s.start_time_seconds, now + 2);
  EXPECT_GT(*s.start_time_seconds, now - 3600);
}

}  // namespace
}  // namespace rnnserve::metrics
