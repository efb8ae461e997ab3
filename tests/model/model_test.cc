#include "server/model/model.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/model/tensors.h"
#include "tests/model/test_util.h"

namespace rnnserve::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ModelConfig SmallConfig() {
  ModelConfig config;
  config.name = "small";
  config.version = "1";
  config.cell = Cell::kLstm;
  config.input_size = 3;
  config.hidden_size = 2;
  config.output_size = 4;
  config.task = Task::kClassification;
  return config;
}

// A valid model of `config`, its values those of testing::ModelTensors.
Model MakeModel(const ModelConfig& config) {
  Model model;
  model.config = config;
  model.layers.resize(static_cast<size_t>(config.num_layers) *
                      config.num_directions());
  std::vector<testing::FakeTensor> tensors = testing::ModelTensors(config);
  for (const TensorSpec& spec : ExpectedTensors(config)) {
    MutableTensorValues(model, spec) =
        testing::Named(tensors, spec.name).values;
  }
  return model;
}

std::string InvalidMessage(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  return std::string(status.message());
}

TEST(ModelTest, NamesCellsAndTasks) {
  EXPECT_EQ(CellName(Cell::kLstm), "lstm");
  EXPECT_EQ(CellName(Cell::kGru), "gru");
  EXPECT_EQ(CellName(Cell::kRnnTanh), "rnn_tanh");
  EXPECT_EQ(CellName(Cell::kRnnRelu), "rnn_relu");
  EXPECT_EQ(TaskName(Task::kClassification), "classification");
  EXPECT_EQ(TaskName(Task::kRegression), "regression");
}

TEST(ModelTest, CountsGatesAsPyTorchStacksThem) {
  EXPECT_EQ(NumGates(Cell::kLstm), 4);
  EXPECT_EQ(NumGates(Cell::kGru), 3);
  EXPECT_EQ(NumGates(Cell::kRnnTanh), 1);
  EXPECT_EQ(NumGates(Cell::kRnnRelu), 1);
}

TEST(ModelTest, StateSizeCountsHAndForLstmC) {
  ModelConfig config = SmallConfig();
  config.num_layers = 3;
  config.hidden_size = 5;
  EXPECT_EQ(config.state_size(), 3 * 5 * 2);
  config.bidirectional = true;
  EXPECT_EQ(config.state_size(), 3 * 2 * 5 * 2);
  config.cell = Cell::kGru;
  EXPECT_EQ(config.state_size(), 3 * 2 * 5);
  config.cell = Cell::kRnnRelu;
  config.bidirectional = false;
  EXPECT_EQ(config.state_size(), 15);
}

TEST(ModelTest, LayerInputSize) {
  ModelConfig config = SmallConfig();
  config.num_layers = 2;
  EXPECT_EQ(LayerInputSize(config, 0), 3);
  EXPECT_EQ(LayerInputSize(config, 1), 2);
  config.bidirectional = true;
  EXPECT_EQ(LayerInputSize(config, 0), 3);
  EXPECT_EQ(LayerInputSize(config, 1), 4);
}

TEST(ModelTest, RecurrentTensorNamesFollowStateDict) {
  EXPECT_EQ(RecurrentTensorName("weight_ih", 0, 0), "rnn.weight_ih_l0");
  EXPECT_EQ(RecurrentTensorName("weight_hh", 1, 1), "rnn.weight_hh_l1_reverse");
  EXPECT_EQ(RecurrentTensorName("bias_ih", 12, 0), "rnn.bias_ih_l12");
  EXPECT_EQ(RecurrentTensorName("bias_hh", 0, 1), "rnn.bias_hh_l0_reverse");
}

// The list of docs/model-format.md, section 4, for a 2-layer bidirectional
// GRU with bias.
TEST(ModelTest, ExpectedTensorsOfABidirectionalStack) {
  ModelConfig config = SmallConfig();
  config.cell = Cell::kGru;
  config.num_layers = 2;
  config.bidirectional = true;
  std::vector<std::string> names;
  for (const TensorSpec& spec : ExpectedTensors(config)) {
    names.push_back(spec.name);
  }
  EXPECT_THAT(
      names,
      ElementsAre("rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0",
                  "rnn.bias_hh_l0", "rnn.weight_ih_l0_reverse",
                  "rnn.weight_hh_l0_reverse", "rnn.bias_ih_l0_reverse",
                  "rnn.bias_hh_l0_reverse", "rnn.weight_ih_l1",
                  "rnn.weight_hh_l1", "rnn.bias_ih_l1", "rnn.bias_hh_l1",
                  "rnn.weight_ih_l1_reverse", "rnn.weight_hh_l1_reverse",
                  "rnn.bias_ih_l1_reverse", "rnn.bias_hh_l1_reverse",
                  "out.weight", "out.bias"));
  const std::vector<TensorSpec> specs = ExpectedTensors(config);
  EXPECT_THAT(specs[0].shape, ElementsAre(6, 3));
  EXPECT_EQ(specs[0].explanation, "3 gates x hidden 2, input_size 3");
  EXPECT_THAT(specs[9].shape, ElementsAre(6, 2));
  EXPECT_EQ(specs[9].explanation, "3 gates x hidden 2, hidden 2");
  EXPECT_THAT(specs[12].shape, ElementsAre(6, 4));
  EXPECT_EQ(specs[12].explanation,
            "3 gates x hidden 2, 2 directions x hidden 2");
  EXPECT_EQ(specs[12].layer, 1);
  EXPECT_EQ(specs[12].direction, 1);
  EXPECT_THAT(specs[15].shape, ElementsAre(6));
  EXPECT_THAT(specs[16].shape, ElementsAre(4, 4));
  EXPECT_EQ(specs[16].explanation, "output_size 4, 2 directions x hidden 2");
  EXPECT_THAT(specs[17].shape, ElementsAre(4));
  EXPECT_EQ(specs[17].explanation, "output_size 4");
}

TEST(ModelTest, ExpectedTensorsWithoutBias) {
  ModelConfig config = SmallConfig();
  config.cell = Cell::kRnnTanh;
  config.bias = false;
  std::vector<std::string> names;
  for (const TensorSpec& spec : ExpectedTensors(config)) {
    names.push_back(spec.name);
  }
  EXPECT_THAT(names, ElementsAre("rnn.weight_ih_l0", "rnn.weight_hh_l0",
                                 "out.weight", "out.bias"));
  EXPECT_EQ(ExpectedTensors(config)[0].explanation,
            "1 gate x hidden 2, input_size 3");
}

// The seed models' parameter counts, from models/README.md.
TEST(ModelTest, NumParametersOfTheSeedModels) {
  ModelConfig fashion = SmallConfig();
  fashion.input_size = 28;
  fashion.hidden_size = 64;
  fashion.output_size = 10;
  EXPECT_EQ(NumParameters(fashion), 24714);
  ModelConfig sine = SmallConfig();
  sine.cell = Cell::kRnnTanh;
  sine.input_size = 1;
  sine.hidden_size = 32;
  sine.output_size = 1;
  sine.task = Task::kRegression;
  EXPECT_EQ(NumParameters(sine), 1153);
}

TEST(ModelTest, NumParametersIsTheSumOfTheTensors) {
  ModelConfig config = SmallConfig();
  config.num_layers = 3;
  config.bidirectional = true;
  for (bool bias : {true, false}) {
    config.bias = bias;
    int64_t sum = 0;
    for (const TensorSpec& spec : ExpectedTensors(config)) {
      sum += spec.num_elements();
    }
    EXPECT_EQ(NumParameters(config), sum);
  }
}

TEST(ModelTest, ValidateConfigAcceptsAValidConfig) {
  EXPECT_TRUE(ValidateConfig(SmallConfig()).ok());
  ModelConfig config = SmallConfig();
  config.labels = {"a", "b", "c", "d"};
  config.bidirectional = true;
  config.num_layers = 64;
  EXPECT_TRUE(ValidateConfig(config).ok());
}

TEST(ModelTest, ValidateConfigRefusesSizesOutOfRange) {
  struct Case {
    int ModelConfig::*field;
    const char* key;
    int max;
  };
  for (const Case& c :
       {Case{&ModelConfig::input_size, "input_size", 65536},
        Case{&ModelConfig::hidden_size, "hidden_size", 65536},
        Case{&ModelConfig::num_layers, "num_layers", 64},
        Case{&ModelConfig::output_size, "output_size", 65536}}) {
    for (int bad : {0, -1, c.max + 1, std::numeric_limits<int>::max()}) {
      ModelConfig config = SmallConfig();
      config.*c.field = bad;
      EXPECT_THAT(InvalidMessage(ValidateConfig(config)),
                  HasSubstr(absl::StrCat("\"", c.key, "\" must be in [1, ",
                                         c.max, "], got ", bad)));
    }
  }
}

TEST(ModelTest, ValidateConfigRefusesBadEnums) {
  ModelConfig config = SmallConfig();
  config.cell = static_cast<Cell>(9);
  EXPECT_THAT(InvalidMessage(ValidateConfig(config)), HasSubstr("\"cell\""));
  config = SmallConfig();
  config.task = static_cast<Task>(-1);
  EXPECT_THAT(InvalidMessage(ValidateConfig(config)), HasSubstr("\"task\""));
}

TEST(ModelTest, ValidateConfigRefusesBidirectionalRegression) {
  ModelConfig config = SmallConfig();
  config.task = Task::kRegression;
  config.bidirectional = true;
  EXPECT_THAT(InvalidMessage(ValidateConfig(config)),
              HasSubstr("\"bidirectional\" is only allowed with \"task\" "
                        "\"classification\""));
}

TEST(ModelTest, ValidateConfigChecksLabels) {
  ModelConfig config = SmallConfig();
  config.labels = {"a", "b"};
  EXPECT_THAT(InvalidMessage(ValidateConfig(config)),
              HasSubstr("\"labels\" has 2 entries, expected one per output "
                        "(\"output_size\" 4)"));
  config.labels = {"a", "b", "c", "d"};
  config.task = Task::kRegression;
  EXPECT_THAT(InvalidMessage(ValidateConfig(config)),
              HasSubstr("\"labels\" is only allowed with"));
}

TEST(ModelTest, ValidateConfigRefusesWeightsOutsideTheFolder) {
  for (const char* bad :
       {"", ".", "..", "../x.safetensors", "a/b", "/abs", "a\\b"}) {
    ModelConfig config = SmallConfig();
    config.weights_file = bad;
    EXPECT_THAT(InvalidMessage(ValidateConfig(config)),
                HasSubstr("\"weights\" must be a plain file name"))
        << bad;
  }
  ModelConfig config = SmallConfig();
  config.weights_file = std::string("a\0b", 3);
  EXPECT_FALSE(ValidateConfig(config).ok());
  config.weights_file = "..weights";  // Merely starts with dots: fine.
  EXPECT_TRUE(ValidateConfig(config).ok());
}

TEST(ModelTest, ValidateConfigBoundsTheTotalWeightCount) {
  ModelConfig config = SmallConfig();
  config.input_size = 65536;
  config.hidden_size = 65536;  // 4 * 65536 * (2 * 65536 + 2) > 2^28.
  EXPECT_THAT(InvalidMessage(ValidateConfig(config)),
              HasSubstr("more than the limit of 268435456"));
  // Every size at its maximum: still computed without overflow.
  config.output_size = 65536;
  config.num_layers = 64;
  config.bidirectional = true;
  EXPECT_THAT(InvalidMessage(ValidateConfig(config)),
              HasSubstr("more than the limit"));
}

TEST(ModelTest, ValidateModelAcceptsAConsistentModel) {
  ModelConfig config = SmallConfig();
  EXPECT_TRUE(ValidateModel(MakeModel(config)).ok());
  config.cell = Cell::kGru;
  config.num_layers = 2;
  config.bidirectional = true;
  config.bias = false;
  EXPECT_TRUE(ValidateModel(MakeModel(config)).ok());
}

TEST(ModelTest, ValidateModelChecksTheConfigFirst) {
  Model model = MakeModel(SmallConfig());
  model.config.hidden_size = 0;
  EXPECT_THAT(InvalidMessage(ValidateModel(model)),
              HasSubstr("\"hidden_size\""));
}

TEST(ModelTest, ValidateModelChecksTheLayerCount) {
  ModelConfig config = SmallConfig();
  config.num_layers = 2;
  Model model = MakeModel(config);
  model.layers.pop_back();
  EXPECT_THAT(InvalidMessage(ValidateModel(model)),
              HasSubstr("weights for 1 layer directions, expected 2"));
}

TEST(ModelTest, ValidateModelNamesAMisshapenTensor) {
  ModelConfig config = SmallConfig();
  config.num_layers = 2;
  config.bidirectional = true;
  config.hidden_size = 3;
  Model model = MakeModel(config);
  model.layers[3].weight_hh.resize(27);
  EXPECT_THAT(InvalidMessage(ValidateModel(model)),
              HasSubstr("tensor \"rnn.weight_hh_l1_reverse\" has 27 values, "
                        "expected 36 (4 gates x hidden 3, hidden 3)"));
  model = MakeModel(config);
  model.head_bias.push_back(0);
  EXPECT_THAT(InvalidMessage(ValidateModel(model)),
              HasSubstr("tensor \"out.bias\" has 5 values, expected 4"));
}

TEST(ModelTest, ValidateModelRefusesBiasesWhenBiasIsFalse) {
  ModelConfig config = SmallConfig();
  Model model = MakeModel(config);
  model.config.bias = false;
  EXPECT_THAT(InvalidMessage(ValidateModel(model)),
              HasSubstr("biases while \"bias\" is false"));
}

TEST(ModelTest, ValidateModelRefusesNonFiniteWeights) {
  ModelConfig config = SmallConfig();
  Model model = MakeModel(config);
  model.layers[0].bias_hh[5] = std::nanf("");
  EXPECT_THAT(InvalidMessage(ValidateModel(model)),
              HasSubstr("tensor \"rnn.bias_hh_l0\" has a non-finite value "
                        "(nan) at index 5"));
  model = MakeModel(config);
  model.head_weight[0] = -std::numeric_limits<float>::infinity();
  EXPECT_THAT(InvalidMessage(ValidateModel(model)),
              HasSubstr("tensor \"out.weight\" has a non-finite value (-inf)"));
}

}  // namespace
}  // namespace rnnserve::model
