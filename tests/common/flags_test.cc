// FlagSet: every kind of flag parsed, every mistake named, --help complete.
#include "server/common/flags.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rnnserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Values {
  std::string name = "default name";
  int64_t count = 3;
  double ratio = 0.5;
  bool verbose = false;
  absl::Duration wait = absl::Seconds(2);
};

class FlagsTest : public ::testing::Test {
 protected:
  FlagsTest() : flags_("prog [flags] FILE...", "Does things.") {
    flags_.String("name", &v_.name, "Who.");
    flags_.Int("count", &v_.count, "How many.", 1, 10);
    flags_.Double("ratio", &v_.ratio, "How much.");
    flags_.Bool("verbose", &v_.verbose, "Says more.");
    flags_.Duration("wait", &v_.wait, "How long.");
  }

  absl::StatusOr<std::vector<std::string>> Parse(
      const std::vector<std::string>& args) {
    return flags_.Parse(args);
  }

  Values v_;
  FlagSet flags_;
};

TEST_F(FlagsTest, ParsesEveryKindInBothForms) {
  auto rest = Parse({"--name=ada", "--count", "7", "--ratio=2.5e-1",
                     "--verbose", "--wait", "1h30m", "file1", "file2"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_THAT(*rest, ElementsAre("file1", "file2"));
  EXPECT_EQ(v_.name, "ada");
  EXPECT_EQ(v_.count, 7);
  EXPECT_DOUBLE_EQ(v_.ratio, 0.25);
  EXPECT_TRUE(v_.verbose);
  EXPECT_EQ(v_.wait, absl::Minutes(90));
}

TEST_F(FlagsTest, UnsetFlagsKeepTheirDefaults) {
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(v_.name, "default name");
  EXPECT_EQ(v_.count, 3);
  EXPECT_EQ(v_.wait, absl::Seconds(2));
}

TEST_F(FlagsTest, BooleansTakeExplicitValuesAfterEquals) {
  ASSERT_TRUE(Parse({"--verbose=true"}).ok());
  EXPECT_TRUE(v_.verbose);
  ASSERT_TRUE(Parse({"--verbose=0"}).ok());
  EXPECT_FALSE(v_.verbose);
  ASSERT_TRUE(Parse({"--verbose=1"}).ok());
  EXPECT_TRUE(v_.verbose);
  // Alone it means true; a following word is positional.
  auto rest = Parse({"--verbose=false", "--verbose", "false"});
  ASSERT_TRUE(rest.ok());
  EXPECT_TRUE(v_.verbose);
  EXPECT_THAT(*rest, ElementsAre("false"));
}

TEST_F(FlagsTest, StringsMayBeEmptyAndLastValueWins) {
  ASSERT_TRUE(Parse({"--name=x", "--name="}).ok());
  EXPECT_EQ(v_.name, "");
}

TEST_F(FlagsTest, DurationsAcceptZeroAndUnits) {
  ASSERT_TRUE(Parse({"--wait=0"}).ok());
  EXPECT_EQ(v_.wait, absl::ZeroDuration());
  ASSERT_TRUE(Parse({"--wait=250ms"}).ok());
  EXPECT_EQ(v_.wait, absl::Milliseconds(250));
}

TEST_F(FlagsTest, DoubleDashEndsTheFlags) {
  auto rest = Parse({"--count=2", "--", "--count=5", "-x"});
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(v_.count, 2);
  EXPECT_THAT(*rest, ElementsAre("--count=5", "-x"));
}

// Each bad value is InvalidArgument naming the flag, the value and what
// was expected, and leaves the variable as it was.
TEST_F(FlagsTest, BadValuesNameTheFlagAndWhatWasExpected) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> words;
  };
  const std::vector<Case> cases = {
      {{"--count=abc"}, {"--count", "\"abc\"", "an integer"}},
      {{"--count=5x"}, {"--count", "an integer"}},
      {{"--count="}, {"--count", "an integer"}},
      {{"--count=11"}, {"--count", "[1, 10]", "\"11\""}},
      {{"--count=0"}, {"--count", "[1, 10]"}},
      {{"--count=99999999999999999999"}, {"--count", "an integer"}},
      {{"--ratio=abc"}, {"--ratio", "a finite number"}},
      {{"--ratio=inf"}, {"--ratio", "a finite number"}},
      {{"--ratio=nan"}, {"--ratio", "a finite number"}},
      {{"--verbose=yes"}, {"--verbose", "true or false"}},
      {{"--wait=5"}, {"--wait", "a duration"}},
      {{"--wait=-1s"}, {"--wait", "a duration"}},
      {{"--wait=inf"}, {"--wait", "a duration"}},
      {{"--count"}, {"--count", "needs a value"}},
      {{"--wait"}, {"--wait", "needs a value"}},
  };
  for (const Case& c : cases) {
    Values fresh;
    FlagSet flags("prog", "");
    flags.String("name", &fresh.name, "");
    flags.Int("count", &fresh.count, "", 1, 10);
    flags.Double("ratio", &fresh.ratio, "");
    flags.Bool("verbose", &fresh.verbose, "");
    flags.Duration("wait", &fresh.wait, "");
    auto parsed = flags.Parse(c.args);
    ASSERT_FALSE(parsed.ok()) << c.args[0];
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    for (const std::string& word : c.words) {
      EXPECT_THAT(parsed.status().message(), HasSubstr(word)) << c.args[0];
    }
    EXPECT_EQ(fresh.count, 3);
    EXPECT_EQ(fresh.ratio, 0.5);
    EXPECT_FALSE(fresh.verbose);
    EXPECT_EQ(fresh.wait, absl::Seconds(2));
  }
}

TEST_F(FlagsTest, UnknownFlagsAreNamed) {
  auto parsed = Parse({"--count=2", "--colour=red"});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), HasSubstr("unknown flag --colour"));
  EXPECT_THAT(parsed.status().message(), HasSubstr("--help"));
  // A single dash is not a flag: it is positional.
  auto rest = Parse({"-count"});
  ASSERT_TRUE(rest.ok());
  EXPECT_THAT(*rest, ElementsAre("-count"));
}

TEST_F(FlagsTest, HelpStopsParsingAndListsEveryFlagWithItsDefault) {
  auto rest = Parse({"a", "--help", "--colour=red"});
  ASSERT_TRUE(rest.ok());
  EXPECT_TRUE(flags_.help_requested());
  EXPECT_THAT(*rest, ElementsAre("a"));
  const std::string help = flags_.Help();
  EXPECT_THAT(help, HasSubstr("Usage: prog [flags] FILE..."));
  EXPECT_THAT(help, HasSubstr("Does things."));
  for (const char* line :
       {"--name (string, default: \"default name\")\n      Who.",
        "--count (int, default: 3)\n      How many.",
        "--ratio (float, default: 0.5)\n      How much.",
        "--verbose (bool, default: false)\n      Says more.",
        "--wait (duration, default: 2s)\n      How long.", "--help\n"}) {
    EXPECT_THAT(help, HasSubstr(line));
  }
}

TEST_F(FlagsTest, HelpShowsTheDefaultsNotTheParsedValues) {
  ASSERT_TRUE(Parse({"--count=9", "--wait=1m"}).ok());
  EXPECT_THAT(flags_.Help(), HasSubstr("--count (int, default: 3)"));
  EXPECT_THAT(flags_.Help(), HasSubstr("--wait (duration, default: 2s)"));
  EXPECT_FALSE(flags_.help_requested());
}

}  // namespace
}  // namespace rnnserve
