// rnnctl classify --tokens: one sequence of token ids, checked against the
// model's vocabulary before anything is sent.
#include "client/classify_inputs.h"
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

}  // namespace
}  // namespace rnnserve::client
