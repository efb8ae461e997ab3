// Models that read token ids (config "embedding") over a real gRPC channel:
// Classify and RegressChunk with token_ids against PyTorch goldens, chunks
// equal to the whole stream, ModelInfo, and the errors for bad token input.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/test_server.h"

namespace rnnserve {
namespace {

using testing::ContextWithDeadline;
using testing::Golden;
using testing::GoldensDir;
using ::testing::HasSubstr;
using testing::ReadGolden;
using testing::TestServer;

// See tests/engine/engine_golden_test.cc for why 1e-5 against PyTorch.
constexpr float kTolerance = 1e-5f;
constexpr char kRegressor[] = "emb_rnn_tanh_reg_1l";

class TokenServiceTest : public ::testing::Test {
 protected:
  static std::vector<model::Model> Models() {
    return testing::LoadModels(
        {"tests/goldens/emb_lstm_cls_1l_pad", "tests/goldens/emb_gru_cls_2l_bi",
         "tests/goldens/emb_rnn_tanh_reg_1l", "tests/goldens/gru_cls_3l"});
  }

  grpc::Status Classify(const v1::ClassifyRequest& request,
                        v1::ClassifyResponse* response) {
    auto context = ContextWithDeadline();
    return stub_->Classify(context.get(), request, response);
  }

  grpc::Status Chunk(const v1::RegressRequest& request,
                     v1::RegressResponse* response) {
    auto context = ContextWithDeadline();
    return stub_->RegressChunk(context.get(), request, response);
  }

  // Sequence i of the regressor's golden run as a new session in chunks of
  // `chunk` steps; the outputs of all chunks in order.
  std::vector<float> RunChunks(const Golden& golden, int i, int chunk) {
    const int64_t t_max = golden.shapes.at("tokens")[1];
    const int length = static_cast<int>(golden.I64("lengths")[i]);
    const int64_t* ids = golden.I64("tokens").data() + i * t_max;
    std::vector<float> outputs;
    std::string token;
    for (int t = 0; t < length; t += chunk) {
      const int steps = std::min(chunk, length - t);
      v1::RegressRequest request;
      request.set_model(kRegressor);
      request.set_session_token(token);
      request.set_steps(steps);
      request.mutable_token_ids()->Add(ids + t, ids + t + steps);
      v1::RegressResponse response;
      const grpc::Status status = Chunk(request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) return {};
      token = response.session_token();
      outputs.insert(outputs.end(), response.outputs().begin(),
                     response.outputs().end());
    }
    return outputs;
  }

  TestServer server_{Models()};
  std::unique_ptr<v1::Inference::Stub> stub_ = server_.NewStub();
};

TEST_F(TokenServiceTest, ClassifyWithTokenIdsMatchesPyTorch) {
  for (const char* name : {"emb_lstm_cls_1l_pad", "emb_gru_cls_2l_bi"}) {
    SCOPED_TRACE(name);
    const Golden golden =
        ReadGolden(GoldensDir() / name / "golden.safetensors");
    const v1::ClassifyRequest request =
        testing::GoldenClassifyRequest(golden, name);
    ASSERT_GT(request.sequences(0).token_ids_size(), 0);
    v1::ClassifyResponse response;
    const grpc::Status status = Classify(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.results_size(), request.sequences_size());
    const std::vector<float>& logits = golden.F32("logits");
    const int o = static_cast<int>(golden.shapes.at("logits")[1]);
    for (int i = 0; i < response.results_size(); ++i) {
      ASSERT_EQ(response.results(i).logits_size(), o);
      for (int k = 0; k < o; ++k) {
        EXPECT_NEAR(response.results(i).logits(k), logits[i * o + k],
                    kTolerance)
            << "sequence " << i << " output " << k;
      }
    }
  }
}

TEST_F(TokenServiceTest, RegressChunksEqualTheWholeStreamAndPyTorch) {
  const Golden golden =
      ReadGolden(GoldensDir() / kRegressor / "golden.safetensors");
  const std::vector<float>& want = golden.F32("outputs_from_zero");
  const int64_t t_max = golden.shapes.at("tokens")[1];
  const int o = static_cast<int>(golden.shapes.at("outputs")[2]);
  for (int i = 0; i < static_cast<int>(golden.I64("lengths").size()); ++i) {
    const std::vector<float> whole = RunChunks(golden, i, 1000);
    ASSERT_EQ(whole.size(), golden.I64("lengths")[i] * o);
    for (size_t k = 0; k < whole.size(); ++k) {
      EXPECT_NEAR(whole[k], want[i * t_max * o + k], kTolerance)
          << "sequence " << i << " value " << k;
    }
    for (int chunk : {1, 2, 5}) {
      const std::vector<float> parts = RunChunks(golden, i, chunk);
      ASSERT_EQ(parts.size(), whole.size());
      for (size_t k = 0; k < whole.size(); ++k) {
        EXPECT_NEAR(parts[k], whole[k], kTolerance)
            << "sequence " << i << " in chunks of " << chunk;
      }
    }
  }
}

TEST_F(TokenServiceTest, ModelInfoSaysTokenIdsAndTheVocabulary) {
  for (const auto& [name, kind, vocabulary] :
       std::vector<std::tuple<std::string, v1::InputKind, uint32_t>>{
           {"emb_gru_cls_2l_bi", v1::INPUT_KIND_TOKEN_IDS, 40},
           {"gru_cls_3l", v1::INPUT_KIND_VALUES, 0}}) {
    v1::GetModelRequest request;
    request.set_model(name);
    v1::ModelInfo info;
    auto context = ContextWithDeadline();
    ASSERT_TRUE(stub_->GetModel(context.get(), request, &info).ok());
    EXPECT_EQ(info.input_kind(), kind) << name;
    EXPECT_EQ(info.vocabulary_size(), vocabulary) << name;
  }
}

// A Classify request of `n` sequences of 3 good ids (all 1) to `model`.
v1::ClassifyRequest TokenRequest(const std::string& model, int n) {
  v1::ClassifyRequest request;
  request.set_model(model);
  for (int i = 0; i < n; ++i) {
    v1::Sequence* s = request.add_sequences();
    s->set_steps(3);
    for (int t = 0; t < 3; ++t) s->add_token_ids(1);
  }
  return request;
}

TEST_F(TokenServiceTest, BadTokenInputIsInvalidArgumentNamingTheField) {
  v1::ClassifyResponse response;
  v1::ClassifyRequest request = TokenRequest("emb_lstm_cls_1l_pad", 3);
  request.mutable_sequences(2)->set_token_ids(1, 30);
  grpc::Status status = Classify(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "sequences[2].token_ids[1]: 30 is outside the vocabulary [0, 30)");

  request = TokenRequest("emb_lstm_cls_1l_pad", 2);
  request.mutable_sequences(1)->set_token_ids(0, -1);
  status = Classify(request, &response);
  EXPECT_EQ(status.error_message(),
            "sequences[1].token_ids[0]: -1 is outside the vocabulary [0, 30)");

  request = TokenRequest("emb_lstm_cls_1l_pad", 1);
  request.mutable_sequences(0)->set_steps(4);
  status = Classify(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "sequences[0].token_ids: expected 4 token ids (one per step), "
            "got 3");

  request = TokenRequest("emb_lstm_cls_1l_pad", 1);
  request.mutable_sequences(0)->add_values(0.5f);
  status = Classify(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("sequences[0].values: model \"emb_lstm_cls_1l_pad\" "
                        "reads token ids"));

  // A float model refuses token ids.
  request = TokenRequest("gru_cls_3l", 1);
  status = Classify(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("sequences[0].token_ids: model \"gru_cls_3l\" reads "
                        "values (3 per step), not token ids"));

  // A chunk names its own field.
  v1::RegressRequest chunk;
  chunk.set_model(kRegressor);
  chunk.set_steps(2);
  chunk.add_token_ids(3);
  chunk.add_token_ids(25);
  v1::RegressResponse regress_response;
  status = Chunk(chunk, &regress_response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "token_ids[1]: 25 is outside the vocabulary [0, 25)");
}

}  // namespace
}  // namespace rnnserve
