// Known traffic moves each series by the expected amount, read back through
// Render() as a scraper would see it.
#include "server/metrics/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/metrics/exposition.h"
#include "tests/metrics/test_models.h"

namespace rnnserve::metrics {
namespace {

using ::testing::DoubleNear;
using testing::Exposition;
using testing::Labels;
using ::testing::Optional;

constexpr const char* kCodes[kNumCodes] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};

class MetricsTest : public ::testing::Test {
 protected:
  MetricsTest() { metrics_.SetSessionStoreBackend("memory"); }
  Exposition Scrape() const {
    auto parsed = testing::ParseExposition(metrics_.Render());
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return parsed.ok() ? *parsed : Exposition{};
  }
  ModelMetrics& Model(const std::string& name, const std::string& version) {
    ModelMetrics* m = metrics_.ForModel(name, version);
    EXPECT_NE(m, nullptr) << name << " " << version;
    return *m;
  }

  Metrics metrics_{BuildInfo{"0.1.0", "abc123def456"}, testing::SeedConfigs()};
};

// The seed models' versions (SeedConfigs).
const Labels kLstm = {{"model", "fashion_lstm"}, {"version", "1"}};
const Labels kSine = {{"model", "sine_rnn"}, {"version", "2024-01"}};

Labels With(Labels labels, const std::string& name, const std::string& value) {
  labels[name] = value;
  return labels;
}

const Labels kClassify = With(kLstm, "method", "Classify");
const Labels kRegress = With(kSine, "method", "Regress");

TEST_F(MetricsTest, PrecreatesEveryModelMethodAndCodeAtZero) {
  const Exposition e = Scrape();
  for (const Labels& version : {kLstm, kSine}) {
    for (const char* method : {"Classify", "Regress", "RegressChunk"}) {
      const Labels labels = With(version, "method", method);
      for (const char* code : kCodes) {
        EXPECT_THAT(
            e.Value("rnnserve_requests_total", With(labels, "code", code)),
            Optional(0.0))
            << version.at("model") << " " << method << " " << code;
      }
      EXPECT_THAT(e.Value("rnnserve_request_duration_seconds_count", labels),
                  Optional(0.0));
      EXPECT_THAT(e.Value("rnnserve_queue_depth", labels), Optional(0.0));
    }
    EXPECT_THAT(e.Value("rnnserve_sessions_active", version), Optional(0.0));
    EXPECT_THAT(e.Value("rnnserve_model_version_draining_sessions", version),
                Optional(0.0));
  }
}

TEST_F(MetricsTest, RequestsCountByCodeAndLatencyObserved) {
  ModelMetrics& m = Model("fashion_lstm", "1");
  for (int i = 0; i < 3; ++i) {
    m.RequestDone(Method::kClassify, absl::StatusCode::kOk,
                  absl::Microseconds(800));
  }
  m.RequestDone(Method::kClassify, absl::StatusCode::kInvalidArgument,
                absl::Milliseconds(20));
  m.RequestDone(Method::kClassify, absl::StatusCode::kResourceExhausted,
                absl::Seconds(3));

  const Exposition e = Scrape();
  const auto requests = [&](const char* code) {
    return e.Value("rnnserve_requests_total", With(kClassify, "code", code));
  };
  EXPECT_THAT(requests("OK"), Optional(3.0));
  EXPECT_THAT(requests("INVALID_ARGUMENT"), Optional(1.0));
  EXPECT_THAT(requests("RESOURCE_EXHAUSTED"), Optional(1.0));
  EXPECT_THAT(requests("INTERNAL"), Optional(0.0));
  // Only the Classify series moved.
  EXPECT_THAT(e.Value("rnnserve_requests_total",
                      With(With(kLstm, "method", "Regress"), "code", "OK")),
              Optional(0.0));

  const std::string h = "rnnserve_request_duration_seconds";
  EXPECT_THAT(e.Value(h + "_count", kClassify), Optional(5.0));
  EXPECT_THAT(e.Value(h + "_sum", kClassify),
              Optional(DoubleNear(3 * 0.0008 + 0.02 + 3, 1e-9)));
  EXPECT_THAT(e.Bucket(h, kClassify, 0.0005), Optional(0.0));
  EXPECT_THAT(e.Bucket(h, kClassify, 0.001), Optional(3.0));
  EXPECT_THAT(e.Bucket(h, kClassify, 0.025), Optional(4.0));
  EXPECT_THAT(e.Bucket(h, kClassify, 2.5), Optional(4.0));
  EXPECT_THAT(e.Bucket(h, kClassify, 5), Optional(5.0));
  EXPECT_THAT(e.Value(h + "_bucket", With(kClassify, "le", "+Inf")),
              Optional(5.0));
}

TEST_F(MetricsTest, LatencyBucketsSpan50MicrosecondsTo10Seconds) {
  const std::vector<std::pair<double, double>> buckets =
      Scrape().Buckets("rnnserve_request_duration_seconds", kClassify);
  ASSERT_EQ(buckets.size(), 18u);  // 17 bounds and +Inf.
  EXPECT_DOUBLE_EQ(buckets.front().first, 0.00005);
  EXPECT_DOUBLE_EQ(buckets[buckets.size() - 2].first, 10);
  EXPECT_TRUE(std::isinf(buckets.back().first));
}

TEST_F(MetricsTest, CodeOutsideGrpcRangeCountsAsUnknown) {
  Model("fashion_lstm", "1")
      .RequestDone(Method::kClassify, static_cast<absl::StatusCode>(42),
                   absl::Milliseconds(1));
  EXPECT_THAT(Scrape().Value("rnnserve_requests_total",
                             With(kClassify, "code", "UNKNOWN")),
              Optional(1.0));
}

TEST_F(MetricsTest, BatchesCountSequencesStepsSizesAndComputeTime) {
  ModelMetrics& m = Model("fashion_lstm", "1");
  m.BatchRan(Method::kClassify, 1, 28, absl::Microseconds(60));
  m.BatchRan(Method::kClassify, 3, 3 * 28, absl::Microseconds(150));
  m.BatchRan(Method::kClassify, 64, 64 * 28, absl::Milliseconds(2));
  m.BatchRan(Method::kClassify, 1000, 1000 * 28, absl::Milliseconds(30));

  const Exposition e = Scrape();
  EXPECT_THAT(e.Value("rnnserve_sequences_total", kLstm), Optional(1068.0));
  EXPECT_THAT(e.Value("rnnserve_steps_total", kLstm), Optional(1068.0 * 28));
  EXPECT_THAT(e.Value("rnnserve_sequences_total", kSine), Optional(0.0));

  const std::string b = "rnnserve_batch_size";
  EXPECT_EQ(e.Buckets(b, kClassify).size(), 12u);  // 1, 2, ..., 1024, +Inf.
  EXPECT_THAT(e.Bucket(b, kClassify, 1), Optional(1.0));
  EXPECT_THAT(e.Bucket(b, kClassify, 2), Optional(1.0));
  EXPECT_THAT(e.Bucket(b, kClassify, 4), Optional(2.0));
  EXPECT_THAT(e.Bucket(b, kClassify, 32), Optional(2.0));
  EXPECT_THAT(e.Bucket(b, kClassify, 64), Optional(3.0));
  EXPECT_THAT(e.Bucket(b, kClassify, 512), Optional(3.0));
  EXPECT_THAT(e.Bucket(b, kClassify, 1024), Optional(4.0));
  EXPECT_THAT(e.Value(b + "_sum", kClassify), Optional(1068.0));

  const std::string c = "rnnserve_compute_duration_seconds";
  EXPECT_THAT(e.Value(c + "_count", kClassify), Optional(4.0));
  EXPECT_THAT(e.Value(c + "_sum", kClassify),
              Optional(DoubleNear(0.00006 + 0.00015 + 0.002 + 0.03, 1e-9)));
  EXPECT_THAT(e.Bucket(c, kClassify, 0.0001), Optional(1.0));
  EXPECT_THAT(e.Bucket(c, kClassify, 0.00025), Optional(2.0));
}

TEST_F(MetricsTest, QueueWaitDepthAndCapacity) {
  ModelMetrics& m = Model("sine_rnn", "2024-01");
  m.QueueWait(Method::kRegress, absl::Microseconds(10));
  m.QueueWait(Method::kRegress, absl::Milliseconds(7));
  m.QueueWait(Method::kRegress, -absl::Milliseconds(1));  // Clock stepped.
  m.SetQueueDepth(Method::kRegress, 17);
  m.SetQueueDepth(Method::kRegress, 5);
  m.SetQueueCapacity(Method::kRegress, 1024);

  const Exposition e = Scrape();
  const std::string w = "rnnserve_queue_wait_seconds";
  EXPECT_THAT(e.Value(w + "_count", kRegress), Optional(3.0));
  EXPECT_THAT(e.Value(w + "_sum", kRegress),
              Optional(DoubleNear(0.00001 + 0.007, 1e-9)));
  EXPECT_THAT(e.Bucket(w, kRegress, 0.00005), Optional(2.0));
  EXPECT_THAT(e.Bucket(w, kRegress, 0.01), Optional(3.0));
  EXPECT_THAT(e.Value("rnnserve_queue_depth", kRegress), Optional(5.0));
  EXPECT_THAT(e.Value("rnnserve_queue_capacity", kRegress), Optional(1024.0));
  EXPECT_THAT(e.Value("rnnserve_queue_capacity", kClassify), Optional(0.0));
}

TEST_F(MetricsTest, SessionEventsThroughTheObserver) {
  sessions::SessionObserver& observer = metrics_;
  for (int i = 0; i < 5; ++i) observer.OnCreated("sine_rnn", "2024-01");
  for (int i = 0; i < 3; ++i) observer.OnResumed("sine_rnn", "2024-01");
  for (int i = 0; i < 2; ++i) observer.OnExpired("sine_rnn", "2024-01");
  observer.OnEnded("sine_rnn", "2024-01");
  for (int i = 0; i < 4; ++i) observer.OnRefused("sine_rnn", "2024-01");
  // Ignored, not a new series.
  observer.OnCreated("no_such_model", "1");
  observer.OnCreated("sine_rnn", "no_such_version");
  metrics_.SetMaxSessions(10000);

  const Exposition e = Scrape();
  const Labels& model = kSine;
  EXPECT_THAT(e.Value("rnnserve_sessions_created_total", model), Optional(5.0));
  EXPECT_THAT(e.Value("rnnserve_sessions_resumed_total", model), Optional(3.0));
  EXPECT_THAT(e.Value("rnnserve_sessions_expired_total", model), Optional(2.0));
  EXPECT_THAT(e.Value("rnnserve_sessions_ended_total", model), Optional(1.0));
  EXPECT_THAT(e.Value("rnnserve_sessions_refused_total", model), Optional(4.0));
  // Held now: created minus expired minus ended.
  EXPECT_THAT(e.Value("rnnserve_sessions_active", model), Optional(2.0));
  EXPECT_THAT(e.Value("rnnserve_sessions_active", kLstm), Optional(0.0));
  EXPECT_FALSE(e.Value("rnnserve_sessions_active",
                       {{"model", "no_such_model"}, {"version", "1"}})
                   .has_value());
  EXPECT_FALSE(e.Value("rnnserve_sessions_created_total",
                       {{"model", "sine_rnn"}, {"version", "no_such_version"}})
                   .has_value());
  EXPECT_THAT(e.Value("rnnserve_sessions_max"), Optional(10000.0));
}

TEST_F(MetricsTest, UnknownModelOrVersionHasNoSeries) {
  EXPECT_EQ(metrics_.ForModel("no_such_model", "1"), nullptr);
  EXPECT_EQ(metrics_.ForModel("sine_rnn", "1"), nullptr);
  EXPECT_EQ(metrics_.ForModel("sine_rnn", ""), nullptr);
  EXPECT_NE(metrics_.ForModel("sine_rnn", "2024-01"), nullptr);
}

TEST_F(MetricsTest, ModelAndBuildInfo) {
  const Exposition e = Scrape();
  EXPECT_THAT(e.Value("rnnserve_build_info",
                      {{"version", "0.1.0"}, {"git_commit", "abc123def456"}}),
              Optional(1.0));
  EXPECT_THAT(e.Value("rnnserve_model_info", {{"model", "fashion_lstm"},
                                              {"version", "1"},
                                              {"cell", "lstm"},
                                              {"task", "classification"},
                                              {"input_size", "28"},
                                              {"hidden_size", "64"},
                                              {"num_layers", "1"},
                                              {"bidirectional", "false"},
                                              {"output_size", "10"}}),
              Optional(1.0));
  EXPECT_THAT(e.Value("rnnserve_model_info", {{"model", "sine_rnn"},
                                              {"version", "2024-01"},
                                              {"cell", "rnn_tanh"},
                                              {"task", "regression"},
                                              {"input_size", "1"},
                                              {"hidden_size", "32"},
                                              {"num_layers", "1"},
                                              {"bidirectional", "false"},
                                              {"output_size", "1"}}),
              Optional(1.0));
}

TEST_F(MetricsTest, NamesFollowPrometheusConventions) {
  // The families that have series only once something happened.
  metrics_.ModelLoadDone("sine_rnn", "2024-01", true);
  metrics_.SetModelVersionState("sine_rnn", "2024-01", "ready");
  const Exposition e = Scrape();
  const std::set<std::string> expected = {
      "rnnserve_build_info",
      "rnnserve_model_info",
      "rnnserve_requests_total",
      "rnnserve_request_duration_seconds",
      "rnnserve_queue_wait_seconds",
      "rnnserve_compute_duration_seconds",
      "rnnserve_batch_size",
      "rnnserve_queue_depth",
      "rnnserve_queue_capacity",
      "rnnserve_sequences_total",
      "rnnserve_steps_total",
      "rnnserve_sessions_active",
      "rnnserve_sessions_max",
      "rnnserve_sessions_created_total",
      "rnnserve_sessions_resumed_total",
      "rnnserve_sessions_expired_total",
      "rnnserve_sessions_refused_total",
      "rnnserve_sessions_ended_total",
      "rnnserve_model_loads_total",
      "rnnserve_model_version_state",
      "rnnserve_model_version_draining_sessions",
      "rnnserve_auth_refused_total",
      "rnnserve_session_store_up",
      "rnnserve_session_store_round_trips_total",
      "rnnserve_session_store_latency_seconds",
      "rnnserve_session_store_errors_total",
      "rnnserve_session_store_takeovers_total",
      "rnnserve_session_store_replays_total",
      "rnnserve_session_store_sessions",
      "process_cpu_seconds_total",
      "process_resident_memory_bytes",
      "process_virtual_memory_bytes",
      "process_open_fds",
      "process_max_fds",
      "process_start_time_seconds",
  };
  std::set<std::string> families;
  for (const auto& [family, type] : e.types) families.insert(family);
  EXPECT_EQ(families, expected);
  for (const auto& [family, type] : e.types) {
    EXPECT_FALSE(e.helps.at(family).empty()) << family;
    const bool total = family.ends_with("_total");
    EXPECT_EQ(type == "counter", total) << family << " is a " << type;
    if (type == "histogram" && family != "rnnserve_batch_size") {
      EXPECT_TRUE(family.ends_with("_seconds")) << family;
    }
  }
}

TEST_F(MetricsTest, TheSessionStoreIsWatched) {
  metrics_.SetSessionStoreBackend("redis");
  // Sessions in a shared store are not this replica's to count.
  metrics_.OnCreated("sine_rnn", "2024-01");
  EXPECT_EQ(Scrape().Value("rnnserve_sessions_active", kSine), 0);
  EXPECT_EQ(Scrape().Value("rnnserve_sessions_created_total", kSine), 1);
  metrics_.OnStoreOperation("commit", absl::Milliseconds(2), true);
  metrics_.OnStoreOperation("commit", absl::Milliseconds(30), false);
  metrics_.OnStoreOperation("attach", absl::Microseconds(80), true);
  metrics_.OnStoreState(false, 42);
  metrics_.OnTakenOver("sine_rnn", "2024-01");
  metrics_.OnReplayed("sine_rnn", "2024-01");
  metrics_.OnReplayed("sine_rnn", "");
  const Exposition e = Scrape();
  EXPECT_EQ(e.Value("rnnserve_session_store_round_trips_total", {}), 3);
  EXPECT_EQ(
      e.Value("rnnserve_session_store_errors_total", {{"operation", "commit"}}),
      1);
  EXPECT_EQ(
      e.Value("rnnserve_session_store_errors_total", {{"operation", "attach"}}),
      0);
  EXPECT_EQ(e.Value("rnnserve_session_store_latency_seconds_count",
                    {{"operation", "commit"}}),
            2);
  EXPECT_EQ(e.Bucket("rnnserve_session_store_latency_seconds",
                     {{"operation", "attach"}}, 100e-6),
            1);
  EXPECT_EQ(e.Value("rnnserve_session_store_up", {{"backend", "redis"}}), 0);
  EXPECT_EQ(e.Value("rnnserve_session_store_sessions", {}), 42);
  EXPECT_EQ(e.Value("rnnserve_session_store_takeovers_total", {}), 1);
  EXPECT_EQ(e.Value("rnnserve_session_store_replays_total", {}), 2);
  metrics_.OnStoreState(true, -1);  // Up again; the count unknown.
  const Exposition again = Scrape();
  EXPECT_EQ(again.Value("rnnserve_session_store_up", {{"backend", "redis"}}),
            1);
  EXPECT_EQ(again.Value("rnnserve_session_store_sessions", {}), 42);
}

TEST_F(MetricsTest, NoLabelIdentifiesASessionOrRequest) {
  const std::set<std::string> allowed = {
      "model",      "method",        "code",        "le",         "version",
      "git_commit", "cell",          "task",        "input_size", "hidden_size",
      "num_layers", "bidirectional", "output_size", "operation",  "backend",
      "outcome",    "state"};
  for (const testing::Sample& s : Scrape().samples) {
    for (const auto& [name, value] : s.labels) {
      EXPECT_TRUE(allowed.contains(name)) << s.name << " has label " << name;
    }
  }
}

TEST_F(MetricsTest, ConcurrentRecordingLosesNothing) {
  constexpr int kThreads = 4;
  constexpr int kCalls = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this] {
      ModelMetrics& m = *metrics_.ForModel("sine_rnn", "2024-01");
      for (int i = 0; i < kCalls; ++i) {
        m.RequestDone(Method::kRegressChunk, absl::StatusCode::kOk,
                      absl::Microseconds(100));
        m.BatchRan(Method::kRegress, 2, 20, absl::Microseconds(50));
        metrics_.OnCreated("sine_rnn", "2024-01");
        metrics_.OnEnded("sine_rnn", "2024-01");
      }
    });
  }
  // Scrapes run while recording goes on.
  for (int i = 0; i < 20; ++i) ASSERT_FALSE(metrics_.Render().empty());
  for (std::thread& t : threads) t.join();

  const Exposition e = Scrape();
  const Labels chunk = With(kSine, "method", "RegressChunk");
  constexpr double kTotal = kThreads * kCalls;
  EXPECT_THAT(e.Value("rnnserve_requests_total", With(chunk, "code", "OK")),
              Optional(kTotal));
  EXPECT_THAT(e.Value("rnnserve_request_duration_seconds_count", chunk),
              Optional(kTotal));
  EXPECT_THAT(e.Value("rnnserve_sequences_total", kSine), Optional(2 * kTotal));
  EXPECT_THAT(e.Value("rnnserve_steps_total", kSine), Optional(20 * kTotal));
  EXPECT_THAT(e.Value("rnnserve_sessions_active", kSine), Optional(0.0));
}

}  // namespace
}  // namespace rnnserve::metrics
