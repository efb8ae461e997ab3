#include "client/bench_mode.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rnnserve::client {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(BenchModeTest, ParsesEachModeAndSpellsItBack) {
  for (const BenchMode mode :
       {BenchMode::kClassify, BenchMode::kStream, BenchMode::kHealth}) {
    absl::StatusOr<BenchMode> parsed = ParseBenchMode(BenchModeName(mode));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, mode);
  }
  EXPECT_EQ(BenchModeName(BenchMode::kClassify), "classify");
  EXPECT_EQ(BenchModeName(BenchMode::kStream), "stream");
  EXPECT_EQ(BenchModeName(BenchMode::kHealth), "health");
}

TEST(BenchModeTest, DefaultModelsFollowTheMode) {
  EXPECT_EQ(BenchDefaultModel(BenchMode::kClassify), "fashion_lstm");
  EXPECT_EQ(BenchDefaultModel(BenchMode::kStream), "sine_rnn");
  EXPECT_EQ(BenchDefaultModel(BenchMode::kHealth), "");
}

TEST(BenchModeTest, UnknownModeNamesTheFlagAndTheAcceptedValues) {
  for (const char* bad : {"Classify", "", "streams", "classify "}) {
    absl::StatusOr<BenchMode> parsed = ParseBenchMode(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.status().message(),
              std::string("--mode: expected classify, stream or health, got "
                          "\"") +
                  bad + "\"");
  }
}

// The command refuses a bad --mode while parsing its flags, before it
// connects to anything.
TEST(BenchModeTest, BenchCommandRejectsAnUnknownModeBeforeConnecting) {
  const absl::Status status = RunBench(
      {"--server=127.0.0.1:1", "--connect-timeout=0", "--mode", "regress"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("--mode"),
                                      HasSubstr("classify, stream or health"),
                                      HasSubstr("\"regress\"")));
}

}  // namespace
}  // namespace rnnserve::client
