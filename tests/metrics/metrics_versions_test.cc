// Model versions come and go while the server runs: their series appear and
// leave /metrics with them, read back through Render() as a scraper sees it,
// while other versions record and scrapes run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "server/metrics/metrics.h"
#include "tests/metrics/exposition.h"
#include "tests/metrics/test_models.h"

namespace rnnserve::metrics {
namespace {

using testing::Exposition;
using testing::Labels;
using ::testing::Optional;

const Labels kLstm1 = {{"model", "fashion_lstm"}, {"version", "1"}};
const Labels kLstm2 = {{"model", "fashion_lstm"}, {"version", "2"}};
const Labels kSine = {{"model", "sine_rnn"}, {"version", "2024-01"}};

Labels With(Labels labels, const std::string& name, const std::string& value) {
  labels[name] = value;
  return labels;
}

// Version `version` of the seed LSTM, twice as wide.
model::ModelConfig LstmVersion(const std::string& version) {
  model::ModelConfig config = testing::SeedConfigs()[0];
  config.version = version;
  config.hidden_size = 128;
  return config;
}

// The samples of `e` whose labels include every one of `labels`.
int SamplesWith(const Exposition& e, const Labels& labels) {
  int n = 0;
  for (const testing::Sample& s : e.samples) {
    bool all = true;
    for (const auto& [name, value] : labels) {
      auto it = s.labels.find(name);
      all = all && it != s.labels.end() && it->second == value;
    }
    n += all ? 1 : 0;
  }
  return n;
}

// Samples, with `labels` besides `method` (per method) where the family has
// one, that every added version has.
void ExpectEverySeries(const Exposition& e, const Labels& labels) {
  for (const char* method :
       {"Classify", "Regress", "RegressChunk", "ModelInfer"}) {
    const Labels m = With(labels, "method", method);
    EXPECT_THAT(e.Value("rnnserve_requests_total", With(m, "code", "OK")),
                Optional(0.0))
        << method;
    EXPECT_THAT(
        e.Value("rnnserve_requests_total", With(m, "code", "UNAUTHENTICATED")),
        Optional(0.0));
    for (const char* histogram : {"rnnserve_request_duration_seconds_count",
                                  "rnnserve_queue_wait_seconds_count",
                                  "rnnserve_compute_duration_seconds_count",
                                  "rnnserve_batch_size_count"}) {
      EXPECT_THAT(e.Value(histogram, m), Optional(0.0)) << histogram;
    }
    EXPECT_THAT(e.Value("rnnserve_queue_depth", m), Optional(0.0));
    EXPECT_THAT(e.Value("rnnserve_queue_capacity", m), Optional(0.0));
  }
  for (const char* family :
       {"rnnserve_sequences_total", "rnnserve_steps_total",
        "rnnserve_sessions_active", "rnnserve_sessions_created_total",
        "rnnserve_sessions_resumed_total", "rnnserve_sessions_expired_total",
        "rnnserve_sessions_refused_total", "rnnserve_sessions_ended_total",
        "rnnserve_model_version_draining_sessions"}) {
    EXPECT_THAT(e.Value(family, labels), Optional(0.0)) << family;
  }
}

class MetricsVersionsTest : public ::testing::Test {
 protected:
  Exposition Scrape() const {
    auto parsed = testing::ParseExposition(metrics_.Render());
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return parsed.ok() ? *parsed : Exposition{};
  }

  Metrics metrics_{BuildInfo{"0.1.0", "abc123"}, testing::SeedConfigs()};
};

TEST_F(MetricsVersionsTest, AVersionAddedWhileServingGetsEverySeries) {
  EXPECT_EQ(SamplesWith(Scrape(), kLstm2), 0);
  ModelMetrics* added = metrics_.AddModelVersion(LstmVersion("2"));
  ASSERT_NE(added, nullptr);
  EXPECT_EQ(metrics_.ForModel("fashion_lstm", "2"), added);
  EXPECT_NE(metrics_.ForModel("fashion_lstm", "1"), added);

  Exposition e = Scrape();
  ExpectEverySeries(e, kLstm2);
  EXPECT_THAT(e.Value("rnnserve_model_info", {{"model", "fashion_lstm"},
                                              {"version", "2"},
                                              {"cell", "lstm"},
                                              {"task", "classification"},
                                              {"input_size", "28"},
                                              {"hidden_size", "128"},
                                              {"num_layers", "1"},
                                              {"bidirectional", "false"},
                                              {"output_size", "10"}}),
              Optional(1.0));
  EXPECT_EQ(SamplesWith(e, With(kLstm1, "task", "classification")), 1);

  // Each version counts its own calls and has its own queue.
  added->RequestDone(Method::kClassify, absl::StatusCode::kOk,
                     absl::Milliseconds(1));
  added->SetQueueDepth(Method::kClassify, 40);
  added->SetQueueCapacity(Method::kClassify, 1000);
  metrics_.ForModel("fashion_lstm", "1")
      ->SetQueueCapacity(Method::kClassify, 500);
  metrics_.OnCreated("fashion_lstm", "2");
  e = Scrape();
  const Labels classify2 = With(kLstm2, "method", "Classify");
  const Labels classify1 = With(kLstm1, "method", "Classify");
  EXPECT_THAT(e.Value("rnnserve_requests_total", With(classify2, "code", "OK")),
              Optional(1.0));
  EXPECT_THAT(e.Value("rnnserve_requests_total", With(classify1, "code", "OK")),
              Optional(0.0));
  EXPECT_THAT(e.Value("rnnserve_queue_depth", classify2), Optional(40.0));
  EXPECT_THAT(e.Value("rnnserve_queue_capacity", classify2), Optional(1000.0));
  EXPECT_THAT(e.Value("rnnserve_queue_capacity", classify1), Optional(500.0));
  EXPECT_THAT(e.Value("rnnserve_sessions_created_total", kLstm2),
              Optional(1.0));
  EXPECT_THAT(e.Value("rnnserve_sessions_created_total", kLstm1),
              Optional(0.0));
}

TEST_F(MetricsVersionsTest, AddingAVersionTwiceGivesTheSameSeries) {
  ModelMetrics* first = metrics_.AddModelVersion(LstmVersion("2"));
  first->RequestDone(Method::kClassify, absl::StatusCode::kOk,
                     absl::Milliseconds(1));
  const int samples = SamplesWith(Scrape(), kLstm2);
  EXPECT_EQ(metrics_.AddModelVersion(LstmVersion("2")), first);
  // The seeds too: the constructor added them.
  EXPECT_EQ(metrics_.AddModelVersion(testing::SeedConfigs()[1]),
            metrics_.ForModel("sine_rnn", "2024-01"));
  const Exposition e = Scrape();
  EXPECT_EQ(SamplesWith(e, kLstm2), samples);
  EXPECT_THAT(e.Value("rnnserve_requests_total",
                      With(With(kLstm2, "method", "Classify"), "code", "OK")),
              Optional(1.0));
}

TEST_F(MetricsVersionsTest, ARemovedVersionLeavesMetricsAndTheOthersStay) {
  ModelMetrics* two = metrics_.AddModelVersion(LstmVersion("2"));
  two->RequestDone(Method::kClassify, absl::StatusCode::kOk,
                   absl::Milliseconds(1));
  two->SetQueueDepth(Method::kClassify, 9);
  ModelMetrics* one = metrics_.ForModel("fashion_lstm", "1");
  one->RequestDone(Method::kClassify, absl::StatusCode::kOk,
                   absl::Milliseconds(1));
  one->BatchRan(Method::kClassify, 3, 84, absl::Milliseconds(1));
  metrics_.OnCreated("sine_rnn", "2024-01");
  ASSERT_GT(SamplesWith(Scrape(), kLstm2), 0);

  metrics_.RemoveModelVersion("fashion_lstm", "2");
  EXPECT_EQ(metrics_.ForModel("fashion_lstm", "2"), nullptr);
  const std::string text = metrics_.Render();
  EXPECT_EQ(text.find("version=\"2\""), std::string::npos) << text;
  Exposition e = Scrape();
  EXPECT_EQ(SamplesWith(e, kLstm2), 0);
  EXPECT_THAT(e.Value("rnnserve_requests_total",
                      With(With(kLstm1, "method", "Classify"), "code", "OK")),
              Optional(1.0));
  EXPECT_THAT(e.Value("rnnserve_sequences_total", kLstm1), Optional(3.0));
  EXPECT_THAT(e.Value("rnnserve_sessions_active", kSine), Optional(1.0));
  EXPECT_EQ(SamplesWith(e, With(kLstm1, "task", "classification")), 1);

  // Late session events of the removed version count nowhere; removing it
  // again, or a version never added, does nothing.
  metrics_.OnCreated("fashion_lstm", "2");
  metrics_.OnEnded("fashion_lstm", "2");
  metrics_.SetDrainingSessions("fashion_lstm", "2", 4);
  metrics_.RemoveModelVersion("fashion_lstm", "2");
  metrics_.RemoveModelVersion("no_such_model", "1");
  EXPECT_EQ(SamplesWith(Scrape(), kLstm2), 0);

  // Added again, it starts from zero.
  ASSERT_NE(metrics_.AddModelVersion(LstmVersion("2")), nullptr);
  ExpectEverySeries(Scrape(), kLstm2);
}

TEST_F(MetricsVersionsTest, RemovingAModelsLastVersionRemovesTheModel) {
  metrics_.RemoveModelVersion("sine_rnn", "2024-01");
  const std::string text = metrics_.Render();
  EXPECT_EQ(text.find("sine_rnn"), std::string::npos) << text;
  EXPECT_GT(SamplesWith(Scrape(), kLstm1), 0);
}

TEST_F(MetricsVersionsTest, LoadOutcomesAreCountedAndOutliveTheVersion) {
  metrics_.ModelLoadDone("fashion_lstm", "3", false);
  metrics_.ModelLoadDone("fashion_lstm", "3", false);
  metrics_.ModelLoadDone("fashion_lstm", "2", true);
  metrics_.AddModelVersion(LstmVersion("2"));
  metrics_.RemoveModelVersion("fashion_lstm", "2");
  const Exposition e = Scrape();
  const Labels three = {{"model", "fashion_lstm"}, {"version", "3"}};
  EXPECT_THAT(
      e.Value("rnnserve_model_loads_total", With(three, "outcome", "failed")),
      Optional(2.0));
  EXPECT_FALSE(
      e.Value("rnnserve_model_loads_total", With(three, "outcome", "loaded"))
          .has_value());
  EXPECT_THAT(
      e.Value("rnnserve_model_loads_total", With(kLstm2, "outcome", "loaded")),
      Optional(1.0));
  EXPECT_EQ(e.types.at("rnnserve_model_loads_total"), "counter");
}

TEST_F(MetricsVersionsTest, AVersionHasOneStateSeries) {
  const std::string s = "rnnserve_model_version_state";
  metrics_.SetModelVersionState("fashion_lstm", "2", "loading");
  Exposition e = Scrape();
  EXPECT_THAT(e.Value(s, With(kLstm2, "state", "loading")), Optional(1.0));
  EXPECT_EQ(e.types.at(s), "gauge");

  metrics_.AddModelVersion(LstmVersion("2"));
  metrics_.SetModelVersionState("fashion_lstm", "2", "ready");
  metrics_.SetModelVersionState("fashion_lstm", "2", "ready");
  metrics_.SetModelVersionState("fashion_lstm", "2", "no_such_state");
  e = Scrape();
  EXPECT_THAT(e.Value(s, With(kLstm2, "state", "ready")), Optional(1.0));
  EXPECT_FALSE(e.Value(s, With(kLstm2, "state", "loading")).has_value());
  EXPECT_FALSE(e.Value(s, With(kLstm2, "state", "no_such_state")).has_value());

  metrics_.SetModelVersionState("fashion_lstm", "2", "draining");
  metrics_.SetDrainingSessions("fashion_lstm", "2", 5);
  e = Scrape();
  EXPECT_THAT(e.Value(s, With(kLstm2, "state", "draining")), Optional(1.0));
  EXPECT_THAT(e.Value("rnnserve_model_version_draining_sessions", kLstm2),
              Optional(5.0));

  // The last state stays after the version goes; a failed load, never
  // added, has its state too.
  metrics_.SetModelVersionState("fashion_lstm", "2", "unloaded");
  metrics_.RemoveModelVersion("fashion_lstm", "2");
  metrics_.SetModelVersionState("fashion_lstm", "3", "loading");
  metrics_.SetModelVersionState("fashion_lstm", "3", "failed");
  e = Scrape();
  EXPECT_THAT(e.Value(s, With(kLstm2, "state", "unloaded")), Optional(1.0));
  EXPECT_FALSE(
      e.Value("rnnserve_model_version_draining_sessions", kLstm2).has_value());
  const Labels three = {{"model", "fashion_lstm"}, {"version", "3"}};
  EXPECT_THAT(e.Value(s, With(three, "state", "failed")), Optional(1.0));
  EXPECT_FALSE(e.Value(s, With(three, "state", "loading")).has_value());
  int of_two = 0, of_three = 0;
  for (const testing::Sample& sample : e.samples) {
    if (sample.name != s) continue;
    of_two += sample.labels.at("version") == "2";
    of_three += sample.labels.at("version") == "3";
    EXPECT_EQ(sample.value, 1.0);
  }
  EXPECT_EQ(of_two, 1);
  EXPECT_EQ(of_three, 1);
}

// A session stored before versions were recorded names none: it counts
// under the model's version while the model has one, and nowhere when it
// has several (which one it runs on is not known here).
TEST_F(MetricsVersionsTest, ASessionWithoutAVersionCountsUnderTheOnlyOne) {
  metrics_.OnResumed("sine_rnn", "");
  metrics_.AddModelVersion(LstmVersion("2"));
  metrics_.OnResumed("fashion_lstm", "");
  const Exposition e = Scrape();
  EXPECT_THAT(e.Value("rnnserve_sessions_resumed_total", kSine), Optional(1.0));
  EXPECT_THAT(e.Value("rnnserve_sessions_resumed_total", kLstm1),
              Optional(0.0));
  EXPECT_THAT(e.Value("rnnserve_sessions_resumed_total", kLstm2),
              Optional(0.0));
  EXPECT_EQ(SamplesWith(e, {{"model", "fashion_lstm"}, {"version", ""}}), 0);
}

// Versions are added and removed, their session events and states set,
// while another version records and scrapes run: nothing recorded into the
// steady version is lost, every scrape parses, and no churned version is
// left. Run under TSan, the design (a map under an absl::Mutex, session
// events recorded under its reader lock) shows no race.
TEST_F(MetricsVersionsTest, VersionsChurnWhileOthersRecordAndScrapesRun) {
  constexpr int kRecorders = 2;
  constexpr int kCalls = 3000;
  constexpr int kChurns = 150;
  const std::vector<std::string> kChurned = {"x0", "x1", "x2"};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kRecorders; ++t) {
    threads.emplace_back([this] {
      ModelMetrics& m = *metrics_.ForModel("sine_rnn", "2024-01");
      for (int i = 0; i < kCalls; ++i) {
        m.RequestDone(Method::kRegressChunk, absl::StatusCode::kOk,
                      absl::Microseconds(100));
        m.BatchRan(Method::kRegress, 2, 20, absl::Microseconds(50));
        m.SetQueueDepth(Method::kRegress, i);
        metrics_.OnCreated("sine_rnn", "2024-01");
        metrics_.OnEnded("sine_rnn", "2024-01");
      }
    });
  }
  threads.emplace_back([this, &kChurned] {
    for (int i = 0; i < kChurns; ++i) {
      const std::string version = kChurned[i % 3];
      metrics_.SetModelVersionState("fashion_lstm", version, "loading");
      ModelMetrics* m = metrics_.AddModelVersion(LstmVersion(version));
      metrics_.ModelLoadDone("fashion_lstm", version, true);
      metrics_.SetModelVersionState("fashion_lstm", version, "ready");
      m->RequestDone(Method::kClassify, absl::StatusCode::kOk,
                     absl::Microseconds(10));
      m->SetQueueDepth(Method::kClassify, i);
      metrics_.SetDrainingSessions("fashion_lstm", version, i);
      metrics_.SetModelVersionState("fashion_lstm", version, "unloaded");
      metrics_.RemoveModelVersion("fashion_lstm", version);
    }
  });
  // Session events of versions that come and go: counted or not, never a
  // write into freed series.
  threads.emplace_back([this, &done, &kChurned] {
    for (int i = 0; !done.load(); ++i) {
      const std::string version = kChurned[i % 3];
      metrics_.OnCreated("fashion_lstm", version);
      metrics_.OnExpired("fashion_lstm", version);
      metrics_.OnRefused("fashion_lstm", "");
    }
  });
  std::vector<std::thread> scrapers;
  for (int t = 0; t < 2; ++t) {
    scrapers.emplace_back([this, &done] {
      while (!done.load()) {
        ASSERT_TRUE(testing::ParseExposition(metrics_.Render()).ok());
      }
    });
  }
  for (int t = 0; t < kRecorders + 1; ++t) threads[t].join();
  done.store(true);
  for (size_t t = kRecorders + 1; t < threads.size(); ++t) threads[t].join();
  for (std::thread& t : scrapers) t.join();

  const Exposition e = Scrape();
  constexpr double kTotal = kRecorders * kCalls;
  const Labels chunk = With(kSine, "method", "RegressChunk");
  EXPECT_THAT(e.Value("rnnserve_requests_total", With(chunk, "code", "OK")),
              Optional(kTotal));
  EXPECT_THAT(e.Value("rnnserve_sequences_total", kSine), Optional(2 * kTotal));
  EXPECT_THAT(e.Value("rnnserve_sessions_created_total", kSine),
              Optional(kTotal));
  EXPECT_THAT(e.Value("rnnserve_sessions_active", kSine), Optional(0.0));
  for (const std::string& version : kChurned) {
    const Labels labels = {{"model", "fashion_lstm"}, {"version", version}};
    // Only the series kept after a version goes: its loads and its state.
    EXPECT_EQ(SamplesWith(e, labels), 2) << version;
    EXPECT_THAT(e.Value("rnnserve_model_version_state",
                        With(labels, "state", "unloaded")),
                Optional(1.0));
    EXPECT_THAT(e.Value("rnnserve_model_loads_total",
                        With(labels, "outcome", "loaded")),
                Optional(kChurns / 3));
  }
}

}  // namespace
}  // namespace rnnserve::metrics
