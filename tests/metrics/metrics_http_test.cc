// The same series over a real HTTP GET of /metrics from Serve().
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/metrics/metrics.h"
#include "tests/metrics/exposition.h"
#include "tests/metrics/http_get.h"
#include "tests/metrics/test_models.h"

namespace rnnserve::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

absl::StatusOr<testing::Exposition> Scrape(int port) {
  absl::StatusOr<testing::HttpResponse> response =
      testing::HttpGet(port, "/metrics");
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return absl::InternalError(response->headers);
  }
  return testing::ParseExposition(response->body);
}

TEST(MetricsHttpTest, ServesTrafficOnMetrics) {
  Metrics metrics({"0.1.0", "abc"}, testing::SeedConfigs());
  absl::StatusOr<int> port = metrics.Serve("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_GT(*port, 0);

  ModelMetrics& m = *metrics.ForModel("fashion_lstm", "1");
  for (int i = 0; i < 7; ++i) {
    m.RequestDone(Method::kClassify, absl::StatusCode::kOk,
                  absl::Milliseconds(2));
  }
  m.RequestDone(Method::kClassify, absl::StatusCode::kInvalidArgument,
                absl::Microseconds(30));
  m.BatchRan(Method::kClassify, 7, 7 * 28, absl::Milliseconds(1));
  metrics.OnCreated("sine_rnn", "2024-01");
  metrics.OnResumed("sine_rnn", "2024-01");

  absl::StatusOr<testing::Exposition> e = Scrape(*port);
  ASSERT_TRUE(e.ok()) << e.status();
  const testing::Labels lstm = {{"model", "fashion_lstm"}, {"version", "1"}};
  const testing::Labels sine = {{"model", "sine_rnn"}, {"version", "2024-01"}};
  testing::Labels classify = lstm;
  classify["method"] = "Classify";
  testing::Labels ok = classify, invalid = classify;
  ok["code"] = "OK";
  invalid["code"] = "INVALID_ARGUMENT";
  EXPECT_THAT(e->Value("rnnserve_requests_total", ok), Optional(7.0));
  EXPECT_THAT(e->Value("rnnserve_requests_total", invalid), Optional(1.0));
  EXPECT_THAT(e->Value("rnnserve_request_duration_seconds_count", classify),
              Optional(8.0));
  EXPECT_THAT(e->Bucket("rnnserve_request_duration_seconds", classify, 0.00005),
              Optional(1.0));
  EXPECT_THAT(e->Bucket("rnnserve_request_duration_seconds", classify, 0.0025),
              Optional(8.0));
  EXPECT_THAT(e->Bucket("rnnserve_batch_size", classify, 8), Optional(1.0));
  EXPECT_THAT(e->Bucket("rnnserve_batch_size", classify, 4), Optional(0.0));
  EXPECT_THAT(e->Value("rnnserve_sequences_total", lstm), Optional(7.0));
  EXPECT_THAT(e->Value("rnnserve_steps_total", lstm), Optional(7.0 * 28));
  EXPECT_THAT(e->Value("rnnserve_sessions_active", sine), Optional(1.0));
  EXPECT_THAT(e->Value("rnnserve_sessions_resumed_total", sine), Optional(1.0));
  EXPECT_TRUE(e->Value("process_resident_memory_bytes").has_value());

  // A later scrape sees later traffic.
  m.RequestDone(Method::kClassify, absl::StatusCode::kOk,
                absl::Milliseconds(2));
  e = Scrape(*port);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(e->Value("rnnserve_requests_total", ok), Optional(8.0));
}

TEST(MetricsHttpTest, AnswersWithPrometheusTextFormat) {
  Metrics metrics({"0.1.0", "abc"}, testing::SeedConfigs());
  absl::StatusOr<int> port = metrics.Serve("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status();
  absl::StatusOr<testing::HttpResponse> response =
      testing::HttpGet(*port, "/metrics");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_THAT(response->headers, HasSubstr("Content-Type: text/plain"));
  // Every family Render() gives is served.
  absl::StatusOr<testing::Exposition> rendered =
      testing::ParseExposition(metrics.Render());
  absl::StatusOr<testing::Exposition> served =
      testing::ParseExposition(response->body);
  ASSERT_TRUE(rendered.ok() && served.ok());
  for (const auto& [family, type] : rendered->types) {
    EXPECT_EQ(served->types[family], type) << family;
  }
}

TEST(MetricsHttpTest, ServeTwiceIsRefused) {
  Metrics metrics({"0.1.0", "abc"}, testing::SeedConfigs());
  ASSERT_TRUE(metrics.Serve("127.0.0.1:0").ok());
  EXPECT_EQ(metrics.Serve("127.0.0.1:0").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(MetricsHttpTest, BusyPortIsAnErrorNamingTheAddress) {
  Metrics first({"0.1.0", "abc"}, testing::SeedConfigs());
  absl::StatusOr<int> port = first.Serve("127.0.0.1:0");
  ASSERT_TRUE(port.ok()) << port.status();
  Metrics second({"0.1.0", "abc"}, testing::SeedConfigs());
  const std::string address = "127.0.0.1:" + std::to_string(*port);
  absl::StatusOr<int> again = second.Serve(address);
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(again.status().message(), HasSubstr(address));
}

}  // namespace
}  // namespace rnnserve::metrics
