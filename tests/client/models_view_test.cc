// rnnctl models against a real in-process server: the list and the model
// view show each model's input kind, readout, head, output activation and
// labels as the golden models' configurations (written by
// tools/make_goldens.py) declare them.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/common_flags.h"
#include "client/connection.h"
#include "client/model_info.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/test_server.h"

namespace rnnserve::client {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using Rows = std::vector<std::vector<std::string>>;

class ModelsViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<testing::TestServer>(testing::LoadModels(
        {"tests/goldens/gru_reg_2l_softmax",
         "tests/goldens/emb_rnn_tanh_reg_1l",
         "tests/goldens/gru_cls_2l_mean_mlp", "tests/goldens/gru_cls_3l"}));
    ASSERT_TRUE(server_->ok());
    CommonOptions common;
    common.server = server_->address();
    absl::StatusOr<std::unique_ptr<Connection>> connection =
        Connection::Create(common);
    ASSERT_TRUE(connection.ok()) << connection.status();
    connection_ = std::move(*connection);
  }

  Rows Detail(const std::string& name) {
    absl::StatusOr<v1::ModelInfo> info = FetchModel(*connection_, name);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? ModelDetailRows(*info) : Rows();
  }

  std::unique_ptr<testing::TestServer> server_;
  std::unique_ptr<Connection> connection_;
};

std::vector<std::string> Row(std::string field, std::string value) {
  return {std::move(field), std::move(value)};
}

TEST_F(ModelsViewTest, TheModelViewShowsTheNewFields) {
  const Rows softmax = Detail("gru_reg_2l_softmax");
  EXPECT_THAT(softmax, Contains(Row("input:", "4 values per step")));
  EXPECT_THAT(softmax, Contains(Row("readout:", "-")));
  EXPECT_THAT(softmax, Contains(Row("head:", "linear")));
  EXPECT_THAT(softmax, Contains(Row("output_activation:", "softmax")));
  EXPECT_THAT(softmax, Contains(Row("labels:", "5")));
  EXPECT_THAT(softmax, Contains(Row("  4:", "down")));

  const Rows tokens = Detail("emb_rnn_tanh_reg_1l");
  EXPECT_THAT(tokens,
              Contains(Row("input:", "token ids, one per step, in [0, 25)")));
  EXPECT_THAT(tokens,
              Contains(Row("input_size:", "5 (the embedding's width)")));
  EXPECT_THAT(tokens, Contains(Row("output_activation:", "none")));
  EXPECT_THAT(tokens, Contains(Row("labels:", "(none)")));
  EXPECT_THAT(tokens, Contains(Row("tokenizer:", "(none)")));

  const Rows mlp = Detail("gru_cls_2l_mean_mlp");
  EXPECT_THAT(mlp, Contains(Row("readout:", "mean")));
  EXPECT_THAT(mlp,
              Contains(Row("head:", "linear:8 tanh linear:8 gelu linear:4")));
  EXPECT_THAT(mlp, Contains(Row("output_activation:", "-")));
}

TEST_F(ModelsViewTest, TheListHasAColumnForEach) {
  grpc::ClientContext context;
  connection_->Prepare(&context);
  v1::ListModelsResponse response;
  ASSERT_TRUE(connection_->inference()
                  .ListModels(&context, v1::ListModelsRequest(), &response)
                  .ok());
  const Rows rows = ModelListRows(response);
  ASSERT_EQ(rows.size(), 5u);
  const std::vector<std::string>& header = rows[0];
  auto column = [&](const std::string& row_name, const std::string& name) {
    for (const auto& row : rows) {
      if (row[0] != row_name) continue;
      for (size_t c = 0; c < header.size(); ++c) {
        if (header[c] == name) return row[c];
      }
    }
    return std::string("(missing)");
  };
  EXPECT_EQ(column("emb_rnn_tanh_reg_1l", "INPUT"), "token ids < 25");
  EXPECT_EQ(column("gru_reg_2l_softmax", "INPUT"), "4 values");
  EXPECT_EQ(column("gru_reg_2l_softmax", "ACTIVATION"), "softmax");
  EXPECT_EQ(column("gru_reg_2l_softmax", "LABELS"), "sil,yes,no,up,down");
  EXPECT_EQ(column("gru_reg_2l_softmax", "READOUT"), "-");
  EXPECT_EQ(column("gru_cls_2l_mean_mlp", "READOUT"), "mean");
  EXPECT_EQ(column("gru_cls_2l_mean_mlp", "HEAD"),
            "linear:8 tanh linear:8 gelu linear:4");
  EXPECT_EQ(column("gru_cls_2l_mean_mlp", "LABELS"), "-");
  EXPECT_EQ(column("gru_cls_2l_mean_mlp", "ACTIVATION"), "-");
  EXPECT_EQ(column("gru_cls_3l", "LABELS"),
            "zero,one,two,three,f\u00fcnf \u2603");
}

TEST(LabelsSummaryTest, LongListsAreShortenedToTheFirstAndTheCount) {
  v1::ModelInfo model;
  EXPECT_EQ(LabelsSummary(model), "-");
  for (const char* label : {"T-shirt/top", "Trouser", "Pullover", "Dress"}) {
    model.add_labels(label);
  }
  EXPECT_EQ(LabelsSummary(model), "T-shirt/top,... (4)");
}

}  // namespace
}  // namespace rnnserve::client
