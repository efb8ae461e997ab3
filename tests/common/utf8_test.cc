#include "server/common/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace rnnserve {
namespace {

TEST(Utf8Test, EncodesEveryLength) {
  std::string out;
  for (uint32_t cp : {0x24u, 0xA2u, 0x20ACu, 0x10348u, 0x10FFFFu}) {
    AppendUtf8(cp, &out);
  }
  EXPECT_EQ(out, "\x24\xC2\xA2\xE2\x82\xAC\xF0\x90\x8D\x88\xF4\x8F\xBF\xBF");
}

TEST(Utf8Test, MeasuresWellFormedSequences) {
  EXPECT_EQ(Utf8SequenceLength("\xC2\xA2x"), 2u);
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82\xAC"), 3u);
  EXPECT_EQ(Utf8SequenceLength("\xED\x9F\xBF"), 3u);  // U+D7FF
  EXPECT_EQ(Utf8SequenceLength("\xF0\x90\x8D\x88"), 4u);
  EXPECT_EQ(Utf8SequenceLength("\xF4\x8F\xBF\xBF"), 4u);  // U+10FFFF
}

TEST(Utf8Test, RefusesIllFormedSequences) {
  EXPECT_EQ(Utf8SequenceLength(""), 0u);
  EXPECT_EQ(Utf8SequenceLength("a"), 0u);
  EXPECT_EQ(Utf8SequenceLength("\x80"), 0u);
  EXPECT_EQ(Utf8SequenceLength("\xC0\x80"), 0u);
  EXPECT_EQ(Utf8SequenceLength("\xC2"), 0u);
  EXPECT_EQ(Utf8SequenceLength("\xE0\x9F\xBF"), 0u);
  EXPECT_EQ(Utf8SequenceLength("\xED\xA0\x80"), 0u);
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82"), 0u);
  EXPECT_EQ(Utf8SequenceLength("\xE2\x82x"), 0u);
  EXPECT_EQ(Utf8SequenceLength("\xF0\x8F\xBF\xBF"), 0u);
  EXPECT_EQ(Utf8SequenceLength("\xF4\x90\x80\x80"), 0u);
  EXPECT_EQ(Utf8SequenceLength("\xF5\x80\x80\x80"), 0u);
  EXPECT_EQ(Utf8SequenceLength("\xFF"), 0u);
}

}  // namespace
}  // namespace rnnserve
