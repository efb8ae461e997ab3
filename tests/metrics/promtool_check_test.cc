// Prometheus' own linter, `promtool check metrics`, finds nothing to say
// about what the server exports: naming, units, help, types.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "server/metrics/metrics.h"
#include "tests/metrics/http_get.h"
#include "tests/metrics/test_models.h"

namespace rnnserve::metrics {
namespace {

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr.
};

// Runs `promtool check metrics` with `text` on its stdin.
Result PromtoolCheckMetrics(const std::string& text) {
  char path[] = "/tmp/rnnserve_metrics_XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << text;
  Result result;
  const std::string command =
      std::string("promtool check metrics < ") + path + " 2>&1";
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[4096];
    for (size_t n; (n = fread(buffer, 1, sizeof(buffer), pipe)) > 0;) {
      result.output.append(buffer, n);
    }
    const int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  unlink(path);
  return result;
}

void RecordTraffic(Metrics& metrics) {
  ModelMetrics& c = *metrics.ForModel("fashion_lstm", "1");
  c.RequestDone(Method::kClassify, absl::StatusCode::kOk,
                absl::Milliseconds(3));
  c.RequestDone(Method::kClassify, absl::StatusCode::kInvalidArgument,
                absl::Microseconds(40));
  c.BatchRan(Method::kClassify, 5, 140, absl::Milliseconds(1));
  c.QueueWait(Method::kClassify, absl::Microseconds(70));
  c.SetQueueDepth(Method::kClassify, 3);
  c.SetQueueCapacity(Method::kClassify, 1024);
  metrics.OnCreated("sine_rnn", "2024-01");
  metrics.SetMaxSessions(10000);
  // The version series, with a version that came and went.
  metrics.ModelLoadDone("fashion_lstm", "2", false);
  metrics.SetModelVersionState("fashion_lstm", "2", "failed");
  metrics.SetModelVersionState("fashion_lstm", "1", "draining");
  metrics.SetDrainingSessions("fashion_lstm", "1", 2);
  metrics.AddModelVersion(testing::SeedVersion(0, "3"));
  metrics.RemoveModelVersion("fashion_lstm", "3");
}

TEST(PromtoolCheckTest, RenderedMetricsPassPromtool) {
  Metrics metrics({"0.1.0", "abc"}, testing::SeedConfigs());
  RecordTraffic(metrics);
  const Result result = PromtoolCheckMetrics(metrics.Render());
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "");
}

TEST(PromtoolCheckTest, ServedMetricsPassPromtool) {
  Metrics metrics({"0.1.0", "abc"}, testing::SeedConfigs());
  RecordTraffic(metrics);
  absl::StatusOr<int> port = metrics.Serve("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status();
  absl::StatusOr<testing::HttpResponse> response =
      testing::HttpGet(*port, "/metrics");
  ASSERT_TRUE(response.ok()) << response.status();
  const Result result = PromtoolCheckMetrics(response->body);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "");
}

}  // namespace
}  // namespace rnnserve::metrics
