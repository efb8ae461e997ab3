#include "server/model/loader.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/model/config.h"
#include "tests/model/test_util.h"

namespace rnnserve::model {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using testing::BuildSafetensors;
using testing::ConfigJson;
using ::testing::ElementsAre;
using testing::FakeTensor;
using ::testing::HasSubstr;
using testing::ModelTensors;
using testing::Named;

class LoaderTest : public ::testing::Test {
 protected:
  // Writes folder `name` with `config` and `tensors`; returns its path.
  fs::path Write(const std::string& name, const ConfigJson& config,
                 const std::vector<FakeTensor>& tensors) {
    const fs::path dir = temp_.path() / name;
    testing::WriteModelFolder(dir, config.Build(), BuildSafetensors(tensors));
    return dir;
  }

  // The tensors that `config` calls for.
  static std::vector<FakeTensor> TensorsFor(const ConfigJson& config) {
    absl::StatusOr<ModelConfig> parsed =
        ParseModelConfig(config.Build(), "test");
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return parsed.ok() ? ModelTensors(*parsed) : std::vector<FakeTensor>();
  }

  // Loads `dir`, which must fail with `code`; returns the message.
  static std::string Reject(
      const fs::path& dir,
      absl::StatusCode code = absl::StatusCode::kInvalidArgument) {
    absl::StatusOr<Model> model = LoadModel(dir);
    EXPECT_FALSE(model.ok()) << "loaded " << dir;
    if (model.ok()) return "";
    EXPECT_EQ(model.status().code(), code) << model.status();
    return std::string(model.status().message());
  }

  // Writes a model of `config` whose tensors are then changed by `edit`, and
  // returns the message of its rejection, which must name the weights file.
  template <typename Edit>
  std::string RejectTensors(const ConfigJson& config, Edit edit) {
    std::vector<FakeTensor> tensors = TensorsFor(config);
    edit(tensors);
    const fs::path dir = Write("m", config, tensors);
    const std::string message = Reject(dir);
    EXPECT_THAT(message, HasSubstr((dir / "model.safetensors").string()));
    return message;
  }

  testing::TempFolder temp_;
};

TEST_F(LoaderTest, LoadsAModelWithEveryValueInPlace) {
  const ConfigJson config = ConfigJson().Set("num_layers", "2");
  const std::vector<FakeTensor> tensors = TensorsFor(config);
  absl::StatusOr<Model> model = LoadModel(Write("lstm-2.v1", config, tensors));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->config.name, "lstm-2.v1");
  EXPECT_EQ(model->config.version, "7");
  EXPECT_EQ(model->config.num_layers, 2);
  ASSERT_EQ(model->layers.size(), 2u);
  const auto values = [&](const char* name) {
    for (const FakeTensor& t : tensors) {
      if (t.name == name) return t.values;
    }
    return std::vector<float>();
  };
  EXPECT_EQ(model->layers[0].weight_ih, values("rnn.weight_ih_l0"));
  EXPECT_EQ(model->layers[0].weight_hh, values("rnn.weight_hh_l0"));
  EXPECT_EQ(model->layers[1].weight_ih, values("rnn.weight_ih_l1"));
  EXPECT_EQ(model->layers[1].bias_ih, values("rnn.bias_ih_l1"));
  EXPECT_EQ(model->layers[1].bias_hh, values("rnn.bias_hh_l1"));
  EXPECT_EQ(model->head_weight, values("out.weight"));
  EXPECT_EQ(model->head_bias, values("out.bias"));
  EXPECT_TRUE(ValidateModel(*model).ok());
}

// A Sequential head: Linear(2, 4), ReLU, Dropout, Linear(4, 2): tensors
// out.0.* and out.3.*, in place of out.weight and out.bias.
constexpr char kMlpHead[] =
    R"([{"linear": 4}, {"activation": "relu"}, {"dropout": 0.5},
        {"linear": 2}])";

std::vector<FakeTensor> WithMlpHead(std::vector<FakeTensor> tensors) {
  std::erase_if(tensors, [](const FakeTensor& t) {
    return t.name.rfind("out.", 0) == 0;
  });
  tensors.emplace_back("out.0.weight", std::vector<int64_t>{4, 2},
                       std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8});
  tensors.emplace_back("out.0.bias", std::vector<int64_t>{4},
                       std::vector<float>{-1, -2, -3, -4});
  tensors.emplace_back("out.3.weight", std::vector<int64_t>{2, 4},
                       std::vector<float>{8, 7, 6, 5, 4, 3, 2, 1});
  tensors.emplace_back("out.3.bias", std::vector<int64_t>{2},
                       std::vector<float>{0.5, 0.25});
  return tensors;
}

TEST_F(LoaderTest, LoadsASequentialHeadByItsModuleIndices) {
  const ConfigJson config =
      ConfigJson().Set("head", kMlpHead).Set("readout", "\"max\"");
  absl::StatusOr<Model> model =
      LoadModel(Write("mlp", config, WithMlpHead(TensorsFor(ConfigJson()))));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->config.readout, Readout::kMax);
  ASSERT_EQ(model->head_layers.size(), 4u);
  EXPECT_THAT(model->head_layers[0].weight,
              ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
  EXPECT_THAT(model->head_layers[0].bias, ElementsAre(-1, -2, -3, -4));
  EXPECT_TRUE(model->head_layers[1].weight.empty());
  EXPECT_TRUE(model->head_layers[2].weight.empty());
  EXPECT_THAT(model->head_layers[3].weight,
              ElementsAre(8, 7, 6, 5, 4, 3, 2, 1));
  EXPECT_THAT(model->head_layers[3].bias, ElementsAre(0.5, 0.25));
  EXPECT_TRUE(model->head_weight.empty());
  EXPECT_TRUE(ValidateModel(*model).ok());
}

TEST_F(LoaderTest, ReportsSequentialHeadTensorsThatDoNotFit) {
  const ConfigJson config = ConfigJson().Set("head", kMlpHead);
  // The single Linear's tensors where the config asks for a Sequential.
  EXPECT_THAT(Reject(Write("a", config, TensorsFor(ConfigJson()))),
              HasSubstr("missing tensor \"out.0.weight\""));
  // Linear layers at other indices than the config's.
  const ConfigJson shifted = ConfigJson().Set(
      "head", R"([{"linear": 4}, {"activation": "relu"}, {"linear": 2}])");
  EXPECT_THAT(
      Reject(Write("b", shifted, WithMlpHead(TensorsFor(ConfigJson())))),
      HasSubstr("missing tensor \"out.2.weight\""));
  // A width the config does not say.
  const ConfigJson wider = ConfigJson().Set(
      "head", R"([{"linear": 5}, {"activation": "relu"}, {"dropout": 0.5},
                  {"linear": 2}])");
  EXPECT_THAT(Reject(Write("c", wider, WithMlpHead(TensorsFor(ConfigJson())))),
              HasSubstr("tensor \"out.0.weight\" has shape [4, 2], expected "
                        "[5, 2] (\"head\"[0] linear 5, hidden 2)"));
  // Without "head", Sequential tensors are unexpected.
  EXPECT_THAT(
      Reject(Write("d", ConfigJson(), WithMlpHead(TensorsFor(ConfigJson())))),
      HasSubstr("missing tensor \"out.weight\""));
}

TEST_F(LoaderTest, LoadsEveryCellAndLayout) {
  for (const char* cell :
       {"\"lstm\"", "\"gru\"", "\"rnn_tanh\"", "\"rnn_relu\""}) {
    for (const char* bidirectional : {"false", "true"}) {
      for (const char* bias : {"true", "false"}) {
        SCOPED_TRACE(absl::StrCat(cell, " bidirectional ", bidirectional,
                                  " bias ", bias));
        const ConfigJson config = ConfigJson()
                                      .Set("cell", cell)
                                      .Set("num_layers", "3")
                                      .Set("bidirectional", bidirectional)
                                      .Set("bias", bias);
        absl::StatusOr<Model> model =
            LoadModel(Write("m", config, TensorsFor(config)));
        ASSERT_TRUE(model.ok()) << model.status();
        const size_t directions = std::string(bidirectional) == "true" ? 2 : 1;
        ASSERT_EQ(model->layers.size(), 3 * directions);
        // Layer 1 reverse reads both directions of layer 0.
        EXPECT_EQ(model->layers.back().weight_ih.size(),
                  model->layers.back().weight_hh.size() * directions);
        EXPECT_EQ(model->layers[0].bias_ih.empty(),
                  std::string(bias) == "false");
      }
    }
  }
}

// docs/model-format.md, section 6.
TEST_F(LoaderTest, LoadsTheSpecificationsWorkedExampleFromBytes) {
  const std::string config = R"({
    "format_version": 1, "version": "1", "cell": "rnn_tanh",
    "input_size": 1, "hidden_size": 2, "output_size": 1,
    "task": "regression"})";
  const std::string weights = BuildSafetensors({
      {"rnn.weight_ih_l0", {2, 1}, {0.5f, -1.0f}},
      {"rnn.weight_hh_l0", {2, 2}, {0.25f, 0, 0, 0.5f}},
      {"rnn.bias_ih_l0", {2}, {0, 1}},
      {"rnn.bias_hh_l0", {2}, {0, -0.5f}},
      {"out.weight", {1, 2}, {2, -1}},
      {"out.bias", {1}, {0.125f}},
  });
  ASSERT_EQ(weights.size(), 468u);
  absl::StatusOr<Model> model =
      LoadModelFromBytes("tiny_rnn", config, weights, "tiny_rnn/config.json",
                         "tiny_rnn/model.safetensors");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->config.name, "tiny_rnn");
  EXPECT_EQ(model->config.cell, Cell::kRnnTanh);
  EXPECT_EQ(model->config.task, Task::kRegression);
  EXPECT_THAT(model->layers[0].weight_ih, ElementsAre(0.5f, -1.0f));
  EXPECT_THAT(model->layers[0].weight_hh, ElementsAre(0.25f, 0, 0, 0.5f));
  EXPECT_THAT(model->layers[0].bias_hh, ElementsAre(0, -0.5f));
  EXPECT_THAT(model->head_weight, ElementsAre(2, -1));
  EXPECT_THAT(model->head_bias, ElementsAre(0.125f));
}

TEST_F(LoaderTest, FromBytesChecksTheNameAndNamesItsSources) {
  const ConfigJson config;
  const std::string weights = BuildSafetensors(TensorsFor(config));
  EXPECT_EQ(LoadModelFromBytes(".x", config.Build(), weights, "c", "w")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<Model> model = LoadModelFromBytes(
      "x", config.Build(), weights.substr(0, 20), "c.json", "w.safetensors");
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(model.status().message(), HasSubstr("w.safetensors: "));
  model = LoadModelFromBytes("x", "{}", weights, "c.json", "w.safetensors");
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(model.status().message(), HasSubstr("c.json: "));
}

TEST_F(LoaderTest, AcceptsAFolderPathWithATrailingSlash) {
  const ConfigJson config;
  const fs::path dir = Write("slash", config, TensorsFor(config));
  absl::StatusOr<Model> model = LoadModel(dir.string() + "/");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->config.name, "slash");
}

TEST_F(LoaderTest, ReadsTheWeightsFileTheConfigNames) {
  const ConfigJson config = ConfigJson().Set("weights", "\"w.bin\"");
  const fs::path dir = temp_.path() / "m";
  testing::WriteFile(dir / "config.json", config.Build());
  testing::WriteFile(dir / "w.bin", BuildSafetensors(TensorsFor(config)));
  EXPECT_TRUE(LoadModel(dir).ok());
}

TEST_F(LoaderTest, RejectsBadFolderNames) {
  const ConfigJson config;
  for (const char* name :
       {".hidden", "..x", "has space", "semi;colon", "caf\xC3\xA9"}) {
    const fs::path dir = Write(name, config, TensorsFor(config));
    EXPECT_THAT(Reject(dir),
                AllOf(HasSubstr(dir.string()), HasSubstr("model name")))
        << name;
  }
  EXPECT_FALSE(ValidateModelName("").ok());
  EXPECT_FALSE(ValidateModelName(std::string(129, 'a')).ok());
  EXPECT_TRUE(ValidateModelName(std::string(128, 'a')).ok());
  EXPECT_TRUE(ValidateModelName("Az09_-.x").ok());
}

TEST_F(LoaderTest, MissingFolderOrFilesAreNotFound) {
  EXPECT_THAT(Reject(temp_.path() / "nope", absl::StatusCode::kNotFound),
              HasSubstr("no such model folder"));
  const fs::path dir = temp_.path() / "m";
  fs::create_directories(dir);
  EXPECT_THAT(Reject(dir, absl::StatusCode::kNotFound),
              HasSubstr((dir / "config.json").string() + ": file not found"));
  testing::WriteFile(dir / "config.json", ConfigJson().Build());
  EXPECT_THAT(
      Reject(dir, absl::StatusCode::kNotFound),
      HasSubstr((dir / "model.safetensors").string() + ": file not found"));
}

TEST_F(LoaderTest, RejectsAFolderThatIsAFile) {
  testing::WriteFile(temp_.path() / "file", "x");
  EXPECT_THAT(Reject(temp_.path() / "file"), HasSubstr("is not a folder"));
}

TEST_F(LoaderTest, RejectsFilesThatAreNotRegularFiles) {
  const fs::path dir = temp_.path() / "m";
  fs::create_directories(dir / "config.json");
  EXPECT_THAT(Reject(dir), HasSubstr("config.json: not a regular file"));
}

TEST_F(LoaderTest, RefusesOversizedFilesWithoutReadingThem) {
  // Sparse files: their size costs no disk and, refused first, no memory.
  const fs::path dir = temp_.path() / "m";
  testing::WriteFile(dir / "config.json", "");
  fs::resize_file(dir / "config.json", kMaxConfigFileBytes + 1);
  EXPECT_THAT(Reject(dir), HasSubstr("config.json: file is 16777217 bytes, "
                                     "more than the limit of 16777216"));
  testing::WriteFile(dir / "config.json", ConfigJson().Build());
  testing::WriteFile(dir / "model.safetensors", "");
  fs::resize_file(dir / "model.safetensors", kMaxWeightsFileBytes + 1);
  EXPECT_THAT(Reject(dir), HasSubstr("model.safetensors: file is 2147483649 "
                                     "bytes, more than the limit"));
}

TEST_F(LoaderTest, RejectsABadConfigNamingIt) {
  const ConfigJson config = ConfigJson().Set("hidden_size", "\"abc\"");
  const fs::path dir = temp_.path() / "m";
  testing::WriteFile(dir / "config.json", config.Build());
  EXPECT_EQ(Reject(dir), (dir / "config.json").string() +
                             ": \"hidden_size\" must be an integer >= 1, got "
                             "\"abc\"");
}

TEST_F(LoaderTest, RejectsACorruptWeightsFileNamingIt) {
  const ConfigJson config;
  const fs::path dir = Write("m", config, TensorsFor(config));
  const fs::path weights = dir / "model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) - 1);
  EXPECT_THAT(Reject(dir),
              AllOf(HasSubstr(weights.string() + ": tensor \"out.bias\""),
                    HasSubstr("run past the end")));
}

// The brief's example: hidden_size says 3, the tensors were made with 2.
TEST_F(LoaderTest, ReportsAConfigThatContradictsTheWeights) {
  const ConfigJson written = ConfigJson().Set("num_layers", "2");
  const ConfigJson config = ConfigJson(written).Set("hidden_size", "3");
  const fs::path dir = Write("m", config, TensorsFor(written));
  EXPECT_EQ(Reject(dir),
            absl::StrCat((dir / "model.safetensors").string(),
                         ": tensor \"rnn.weight_ih_l0\" has shape [8, 3], "
                         "expected [12, 3] (4 gates x hidden 3, input_size "
                         "3); the file's rnn.weight_hh_l0 [8, 2] fits "
                         "hidden_size 2, but ",
                         (dir / "config.json").string(),
                         " says hidden_size 3, cell lstm (4 gates)"));
}

TEST_F(LoaderTest, ReportsTheWrongCell) {
  const ConfigJson written = ConfigJson().Set("cell", "\"gru\"");
  const fs::path dir = Write("m", ConfigJson(), TensorsFor(written));
  EXPECT_THAT(Reject(dir),
              AllOf(HasSubstr("tensor \"rnn.weight_ih_l0\" has shape [6, 3], "
                              "expected [8, 3]"),
                    HasSubstr("fits 3 gates (gru)")));
}

TEST_F(LoaderTest, ReportsTheWrongInputSize) {
  const ConfigJson written = ConfigJson().Set("input_size", "5");
  const fs::path dir = Write("m", ConfigJson(), TensorsFor(written));
  EXPECT_THAT(Reject(dir), HasSubstr("tensor \"rnn.weight_ih_l0\" has shape "
                                     "[8, 5], expected [8, 3] (4 gates x "
                                     "hidden 2, input_size 3)"));
}

TEST_F(LoaderTest, ReportsTooFewLayersAsAMissingTensor) {
  const fs::path dir =
      Write("m", ConfigJson().Set("num_layers", "2"), TensorsFor(ConfigJson()));
  EXPECT_THAT(Reject(dir),
              AllOf(HasSubstr("missing tensor \"rnn.weight_ih_l1\""),
                    HasSubstr("(cell lstm, num_layers 2, bidirectional "
                              "false, bias true) calls for")));
}

TEST_F(LoaderTest, ReportsTooManyLayersAsAnUnexpectedTensor) {
  const fs::path dir =
      Write("m", ConfigJson(), TensorsFor(ConfigJson().Set("num_layers", "2")));
  EXPECT_THAT(Reject(dir),
              AllOf(HasSubstr("unexpected tensor \"rnn.weight_ih_l1\""),
                    HasSubstr("num_layers 1")));
}

TEST_F(LoaderTest, ReportsABiasMismatchEitherWay) {
  EXPECT_THAT(RejectTensors(ConfigJson().Set("bias", "false"),
                            [](std::vector<FakeTensor>& t) {
                              t.push_back({"rnn.bias_ih_l0", {8}, {}});
                              t.back().values.resize(8);
                            }),
              HasSubstr("unexpected tensor \"rnn.bias_ih_l0\""));
  EXPECT_THAT(RejectTensors(ConfigJson(),
                            [](std::vector<FakeTensor>& t) {
                              std::erase_if(t, [](const FakeTensor& x) {
                                return x.name == "rnn.bias_hh_l0";
                              });
                            }),
              HasSubstr("missing tensor \"rnn.bias_hh_l0\""));
}

TEST_F(LoaderTest, ReportsADirectionMismatch) {
  const ConfigJson bidirectional = ConfigJson().Set("bidirectional", "true");
  EXPECT_THAT(Reject(Write("a", bidirectional, TensorsFor(ConfigJson()))),
              HasSubstr("missing tensor \"rnn.weight_ih_l0_reverse\""));
  EXPECT_THAT(Reject(Write("b", ConfigJson(), TensorsFor(bidirectional))),
              HasSubstr("unexpected tensor \"rnn.weight_ih_l0_reverse\""));
}

TEST_F(LoaderTest, RejectsAnExtraTensor) {
  EXPECT_THAT(RejectTensors(ConfigJson(),
                            [](std::vector<FakeTensor>& t) {
                              t.push_back({"out.scale", {1}, {1.0f}});
                            }),
              HasSubstr("unexpected tensor \"out.scale\""));
}

TEST_F(LoaderTest, RejectsAnotherDtype) {
  EXPECT_THAT(RejectTensors(ConfigJson(),
                            [](std::vector<FakeTensor>& t) {
                              // The right byte count as F64: only the dtype is
                              // wrong.
                              Named(t, "out.bias") =
                                  FakeTensor::Raw("out.bias", "F64", {2},
                                                  std::string(16, '\0'));
                            }),
              HasSubstr("tensor \"out.bias\" has dtype F64, expected F32"));
}

TEST_F(LoaderTest, RejectsAMisshapenHead) {
  EXPECT_THAT(RejectTensors(ConfigJson(),
                            [](std::vector<FakeTensor>& t) {
                              Named(t, "out.weight").shape = {4, 1};
                            }),
              HasSubstr("tensor \"out.weight\" has shape [4, 1], expected "
                        "[2, 2] (output_size 2, hidden 2)"));
  EXPECT_THAT(RejectTensors(ConfigJson(),
                            [](std::vector<FakeTensor>& t) {
                              Named(t, "out.bias").shape = {1, 2};
                            }),
              HasSubstr("tensor \"out.bias\" has shape [1, 2], expected [2] "
                        "(output_size 2)"));
}

TEST_F(LoaderTest, RejectsNonFiniteValues) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    EXPECT_THAT(RejectTensors(ConfigJson(),
                              [bad](std::vector<FakeTensor>& t) {
                                Named(t, "rnn.weight_hh_l0").values[7] = bad;
                              }),
                AllOf(HasSubstr("tensor \"rnn.weight_hh_l0\" has a "
                                "non-finite value"),
                      HasSubstr("at index 7")));
  }
}

}  // namespace
}  // namespace rnnserve::model
