#include "client/text_tokens.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rnnserve::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::Tokenizer Characters(const std::vector<std::string>& tokens, bool lowercase,
                         int unknown_id = -1) {
  v1::Tokenizer tokenizer;
  tokenizer.set_type("characters");
  for (const std::string& token : tokens) tokenizer.add_tokens(token);
  tokenizer.set_lowercase(lowercase);
  if (unknown_id >= 0) tokenizer.set_unknown_id(unknown_id);
  return tokenizer;
}

TEST(TextTokensTest, EachCharacterIsOneId) {
  const v1::Tokenizer tokenizer =
      Characters({"<unk>", "a", "b", "é", "ł", "ß"}, false, 0);
  const auto ids = EncodeText("abéłßa", tokenizer);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(1, 2, 3, 4, 5, 1));
}

TEST(TextTokensTest, UnknownCharactersTakeTheUnknownId) {
  const auto ids = EncodeText("a☃b", Characters({"<unk>", "a", "b"}, false, 0));
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(1, 0, 2));
  // The unknown id's own name is not a character of the text.
  const auto named = EncodeText("<", Characters({"<", "a"}, false, 0));
  ASSERT_TRUE(named.ok());
  EXPECT_THAT(*named, ElementsAre(0));
}

TEST(TextTokensTest, LowercaseFoldsLatinLettersAsPythonDoes) {
  // Python: "AÉŁŚŻĄÑÖŸ".lower() == "aéłśżąñöÿ".
  const v1::Tokenizer tokenizer =
      Characters({"a", "é", "ł", "ś", "ż", "ą", "ñ", "ö", "ÿ"}, true);
  const auto ids = EncodeText("AÉŁŚŻĄÑÖŸ", tokenizer);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8));
  EXPECT_EQ(LowerLatin(0xd7), 0xd7u);    // The multiplication sign stays.
  EXPECT_EQ(LowerLatin(0x138), 0x138u);  // ĸ has no upper case.
  // Python: "İ".lower() is "i" and a combining dot, two characters, so İ
  // stays (it is not the dotless ı that follows it); "ı".lower() is "ı".
  EXPECT_EQ(LowerLatin(0x130), 0x130u);
  EXPECT_EQ(LowerLatin(0x131), 0x131u);
  EXPECT_EQ(LowerLatin(0x132), 0x133u);  // Ĳ -> ĳ, as before İ.
  // Without lowercase the upper-case letter is another character.
  EXPECT_FALSE(EncodeText("A", Characters({"a"}, false)).ok());
}

TEST(TextTokensTest, RefusalsNameTheCharacter) {
  const v1::Tokenizer tokenizer = Characters({"a", "b"}, false);
  const auto unknown = EncodeText("abc", tokenizer);
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(),
              HasSubstr("--text character 2 \"c\" is not in the model's"));
  const auto invalid = EncodeText("a\xff", tokenizer);
  ASSERT_FALSE(invalid.ok());
  EXPECT_THAT(invalid.status().message(),
              HasSubstr("not valid UTF-8 at byte 1 (character 1)"));
  v1::Tokenizer words = tokenizer;
  words.set_type("words");
  EXPECT_THAT(EncodeText("a", words).status().message(),
              HasSubstr("type \"words\""));
}

}  // namespace
}  // namespace rnnserve::client
