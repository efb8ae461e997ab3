// LoadModelRepository on hand-built repositories, and the loader on the two
// seed models that ship in models/.
#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/model/config.h"
#include "server/model/loader.h"
#include "server/model/tensors.h"
#include "tests/model/test_util.h"

namespace rnnserve::model {
namespace {

namespace fs = std::filesystem;
using testing::BuildSafetensors;
using testing::ConfigJson;
using ::testing::HasSubstr;

class RepositoryTest : public ::testing::Test {
 protected:
  void WriteModel(const fs::path& dir, const ConfigJson& config) {
    absl::StatusOr<ModelConfig> parsed =
        ParseModelConfig(config.Build(), "test");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    testing::WriteModelFolder(dir, config.Build(),
                              BuildSafetensors(testing::ModelTensors(*parsed)));
  }

  std::vector<std::string> Names(const std::vector<Model>& models) {
    std::vector<std::string> names;
    for (const Model& model : models) names.push_back(model.config.name);
    return names;
  }

  testing::TempFolder temp_;
};

TEST_F(RepositoryTest, LoadsEveryModelSortedByName) {
  WriteModel(temp_.path() / "zeta", ConfigJson().Set("cell", "\"gru\""));
  WriteModel(temp_.path() / "alpha", ConfigJson());
  WriteModel(temp_.path() / "Beta-2", ConfigJson().Set("version", "\"b\""));
  absl::StatusOr<std::vector<Model>> models = LoadModelRepository(temp_.path());
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_THAT(Names(*models),
              ::testing::ElementsAre("Beta-2", "alpha", "zeta"));
  EXPECT_EQ((*models)[0].config.version, "b");
  EXPECT_EQ((*models)[2].config.cell, Cell::kGru);
}

TEST_F(RepositoryTest, SkipsFilesAndDotEntries) {
  WriteModel(temp_.path() / "only", ConfigJson());
  testing::WriteFile(temp_.path() / "README.md", "# models\n");
  // What a Kubernetes ConfigMap mount or an editor leaves behind.
  fs::create_directories(temp_.path() / "..data");
  fs::create_directories(temp_.path() / ".git");
  absl::StatusOr<std::vector<Model>> models = LoadModelRepository(temp_.path());
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_THAT(Names(*models), ::testing::ElementsAre("only"));
}

TEST_F(RepositoryTest, FollowsLinksToModelFolders) {
  WriteModel(temp_.path() / "store" / "real", ConfigJson());
  fs::create_directories(temp_.path() / "repo");
  fs::create_directory_symlink(temp_.path() / "store" / "real",
                               temp_.path() / "repo" / "linked");
  absl::StatusOr<std::vector<Model>> models =
      LoadModelRepository(temp_.path() / "repo");
  ASSERT_TRUE(models.ok()) << models.status();
  EXPECT_THAT(Names(*models), ::testing::ElementsAre("linked"));
}

TEST_F(RepositoryTest, OneBadModelFailsTheWholeLoadWithItsMessage) {
  WriteModel(temp_.path() / "good", ConfigJson());
  WriteModel(temp_.path() / "bad", ConfigJson());
  testing::WriteFile(temp_.path() / "bad" / "config.json",
                     ConfigJson().Set("cell", "\"lstn\"").Build());
  absl::StatusOr<std::vector<Model>> models = LoadModelRepository(temp_.path());
  ASSERT_FALSE(models.ok());
  EXPECT_EQ(models.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(models.status().message(),
              HasSubstr((temp_.path() / "bad" / "config.json").string() +
                        ": \"cell\" must be one of"));
}

TEST_F(RepositoryTest, AFolderWithABadNameFailsTheLoad) {
  WriteModel(temp_.path() / "good", ConfigJson());
  fs::create_directories(temp_.path() / "bad name");
  absl::StatusOr<std::vector<Model>> models = LoadModelRepository(temp_.path());
  ASSERT_FALSE(models.ok());
  EXPECT_THAT(models.status().message(), HasSubstr("\"bad name\""));
}

TEST_F(RepositoryTest, ARepositoryWithoutModelsIsNotFound) {
  testing::WriteFile(temp_.path() / "README.md", "nothing here\n");
  absl::StatusOr<std::vector<Model>> models = LoadModelRepository(temp_.path());
  ASSERT_FALSE(models.ok());
  EXPECT_EQ(models.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(models.status().message(),
              HasSubstr(temp_.path().string() +
                        ": model repository has no model folder"));
}

TEST_F(RepositoryTest, AMissingRepositoryIsNotFound) {
  absl::StatusOr<std::vector<Model>> models =
      LoadModelRepository(temp_.path() / "nowhere");
  ASSERT_FALSE(models.ok());
  EXPECT_EQ(models.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(models.status().message(), HasSubstr("no such model repository"));
}

TEST_F(RepositoryTest, ARepositoryThatIsAFileIsRefused) {
  testing::WriteFile(temp_.path() / "file", "x");
  absl::StatusOr<std::vector<Model>> models =
      LoadModelRepository(temp_.path() / "file");
  ASSERT_FALSE(models.ok());
  EXPECT_EQ(models.status().code(), absl::StatusCode::kInvalidArgument);
}

const fs::path kSeedModels = fs::path(RNNSERVE_SOURCE_DIR) / "models";

// models/README.md: nn.LSTM(28, 64) then nn.Linear(64, 10), 24,714 weights.
TEST(SeedModelsTest, LoadsFashionLstm) {
  absl::StatusOr<Model> model = LoadModel(kSeedModels / "fashion_lstm");
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelConfig& c = model->config;
  EXPECT_EQ(c.name, "fashion_lstm");
  EXPECT_EQ(c.cell, Cell::kLstm);
  EXPECT_EQ(c.task, Task::kClassification);
  EXPECT_EQ(c.input_size, 28);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_layers, 1);
  EXPECT_FALSE(c.bidirectional);
  EXPECT_TRUE(c.bias);
  EXPECT_EQ(c.output_size, 10);
  ASSERT_EQ(c.labels.size(), 10u);
  EXPECT_EQ(c.labels[0], "T-shirt/top");
  EXPECT_EQ(c.labels[9], "Ankle boot");
  EXPECT_EQ(NumParameters(c), 24714);
  ASSERT_EQ(model->layers.size(), 1u);
  EXPECT_EQ(model->layers[0].weight_ih.size(), 256u * 28);
  EXPECT_EQ(model->head_weight.size(), 10u * 64);
  EXPECT_TRUE(ValidateModel(*model).ok());
}

// nn.RNN(1, 32) (tanh) then nn.Linear(32, 1) at every step, 1,153 weights.
TEST(SeedModelsTest, LoadsSineRnn) {
  absl::StatusOr<Model> model = LoadModel(kSeedModels / "sine_rnn");
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelConfig& c = model->config;
  EXPECT_EQ(c.name, "sine_rnn");
  EXPECT_EQ(c.cell, Cell::kRnnTanh);
  EXPECT_EQ(c.task, Task::kRegression);
  EXPECT_EQ(c.input_size, 1);
  EXPECT_EQ(c.hidden_size, 32);
  EXPECT_EQ(c.output_size, 1);
  EXPECT_TRUE(c.labels.empty());
  EXPECT_EQ(NumParameters(c), 1153);
  EXPECT_EQ(c.state_size(), 32);
  EXPECT_TRUE(ValidateModel(*model).ok());
}

TEST(SeedModelsTest, TheRepositoryServesBoth) {
  absl::StatusOr<std::vector<Model>> models = LoadModelRepository(kSeedModels);
  ASSERT_TRUE(models.ok()) << models.status();
  std::vector<std::string> names;
  for (const Model& model : *models) names.push_back(model.config.name);
  EXPECT_THAT(names, ::testing::IsSupersetOf({"fashion_lstm", "sine_rnn"}));
}

}  // namespace
}  // namespace rnnserve::model
