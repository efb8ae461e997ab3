// rnnctl classify --tokens: one sequence of token ids, checked against the
// model's vocabulary before anything is sent; the parser it shares with
// rnnctl stream (token_flags.h).
#include "client/classify_inputs.h"
#include "client/token_flags.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rnnserve::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::ModelInfo TokenModel() {
  v1::ModelInfo model;
  model.set_name("tagger");
  model.set_input_kind(v1::INPUT_KIND_TOKEN_IDS);
  model.set_vocabulary_size(10);
  return model;
}

TEST(TokenInputsTest, ParsesOneSequenceOfIds) {
  absl::StatusOr<ClassifyInputs> inputs =
      LoadTokenInputs("1, 2,9,0", TokenModel());
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  ASSERT_EQ(inputs->sequences.size(), 1u);
  EXPECT_EQ(inputs->sequences[0].steps(), 4u);
  EXPECT_THAT(inputs->sequences[0].token_ids(), ElementsAre(1, 2, 9, 0));
  EXPECT_TRUE(inputs->sequences[0].values().empty());
}

TEST(TokenInputsTest, RefusesBadIdsAndFloatModels) {
  EXPECT_THAT(LoadTokenInputs("1,10", TokenModel()).status().message(),
              HasSubstr("--tokens[1]: \"10\" is not a token id in [0, 10)"));
  EXPECT_THAT(LoadTokenInputs("1,x", TokenModel()).status().message(),
              HasSubstr("--tokens[1]"));
  EXPECT_THAT(LoadTokenInputs("-1", TokenModel()).status().message(),
              HasSubstr("--tokens[0]"));
  v1::ModelInfo floats;
  floats.set_name("fashion_lstm");
  floats.set_input_kind(v1::INPUT_KIND_VALUES);
  EXPECT_EQ(LoadTokenInputs("1", floats).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(TokenFlagsTest, OneParserNamesEachCommandsValueFlags) {
  absl::StatusOr<std::vector<int64_t>> ids =
      ParseTokenIds(" 0,9 ,3", TokenModel(), "--csv");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre(0, 9, 3));
  EXPECT_THAT(ParseTokenIds("1,2,", TokenModel(), "--csv").status().message(),
              HasSubstr("--tokens[2]: \"\" is not a token id in [0, 10) "
                        "(model \"tagger\")"));
  v1::ModelInfo floats;
  floats.set_name("fashion_lstm");
  floats.set_input_kind(v1::INPUT_KIND_VALUES);
  EXPECT_THAT(ParseTokenIds("1", floats, "--csv").status().message(),
              HasSubstr("reads values, not token ids; use --csv"));
  EXPECT_THAT(LoadTokenInputs("1", floats).status().message(),
              HasSubstr("use --csv or --images"));
  // --text: a model without a tokenizer is refused, naming the flag and
  // what to give instead.
  EXPECT_THAT(LoadTextInputs("ab", TokenModel()).status().message(),
              HasSubstr("--text: model \"tagger\" has no tokenizer (config "
                        "\"tokenizer\"); give its token ids with --tokens"));
  EXPECT_THAT(EncodeTextFlag("ab", floats, "--csv").status().message(),
              HasSubstr("it reads values: use --csv"));
}

}  // namespace
}  // namespace rnnserve::client
