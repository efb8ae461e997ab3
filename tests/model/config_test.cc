#include "server/model/config.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/model/test_util.h"

namespace rnnserve::model {
namespace {

using testing::ConfigJson;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kSource[] = "models/x/config.json";

ModelConfig ParseOk(const std::string& json) {
  absl::StatusOr<ModelConfig> config = ParseModelConfig(json, kSource);
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *std::move(config) : ModelConfig();
}

// The message of a config that must be refused; it must start with the
// file's name.
std::string Reject(const std::string& json) {
  absl::StatusOr<ModelConfig> config = ParseModelConfig(json, kSource);
  EXPECT_FALSE(config.ok()) << "accepted: " << json;
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(config.status().message());
  EXPECT_THAT(message, ::testing::StartsWith(std::string(kSource) + ": "));
  return message;
}

std::string Reject(const ConfigJson& json) { return Reject(json.Build()); }

TEST(ConfigTest, ParsesTheSeedClassifiersConfig) {
  const std::string json = R"({
    "format_version": 1,
    "version": "1",
    "cell": "lstm",
    "input_size": 28,
    "hidden_size": 64,
    "num_layers": 1,
    "bidirectional": false,
    "bias": true,
    "output_size": 10,
    "task": "classification",
    "labels": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "weights": "model.safetensors",
    "description": "Fashion-MNIST classifier",
    "training": {"optimizer": "Adam", "epochs": 4, "test_accuracy": 0.8841,
                 "nested": {"list": [1, [2, {"x": null}]]}}
  })";
  ModelConfig config = ParseOk(json);
  EXPECT_EQ(config.name, "");
  EXPECT_EQ(config.version, "1");
  EXPECT_EQ(config.cell, Cell::kLstm);
  EXPECT_EQ(config.input_size, 28);
  EXPECT_EQ(config.hidden_size, 64);
  EXPECT_EQ(config.num_layers, 1);
  EXPECT_FALSE(config.bidirectional);
  EXPECT_TRUE(config.bias);
  EXPECT_EQ(config.output_size, 10);
  EXPECT_EQ(config.task, Task::kClassification);
  ASSERT_EQ(config.labels.size(), 10u);
  EXPECT_EQ(config.labels[0], "T-shirt/top");
  EXPECT_EQ(config.labels[9], "Ankle boot");
  EXPECT_EQ(config.weights_file, "model.safetensors");
  EXPECT_EQ(config.description, "Fashion-MNIST classifier");
}

TEST(ConfigTest, FillsDefaults) {
  ModelConfig config = ParseOk(ConfigJson().Build());
  EXPECT_EQ(config.version, "7");
  EXPECT_EQ(config.num_layers, 1);
  EXPECT_FALSE(config.bidirectional);
  EXPECT_TRUE(config.bias);
  EXPECT_TRUE(config.labels.empty());
  EXPECT_EQ(config.weights_file, "model.safetensors");
}

TEST(ConfigTest, ReadsEveryOptionalKey) {
  ModelConfig config = ParseOk(ConfigJson()
                                   .Set("cell", "\"gru\"")
                                   .Set("num_layers", "3")
                                   .Set("bidirectional", "true")
                                   .Set("bias", "false")
                                   .Set("labels", R"(["no", "s\u00ed"])")
                                   .Set("weights", "\"w-2.safetensors\"")
                                   .Set("description", "\"\"")
                                   .Set("training", "{}")
                                   .Build());
  EXPECT_EQ(config.cell, Cell::kGru);
  EXPECT_EQ(config.num_layers, 3);
  EXPECT_TRUE(config.bidirectional);
  EXPECT_FALSE(config.bias);
  EXPECT_THAT(config.labels, ElementsAre("no", "s\xC3\xAD"));
  EXPECT_EQ(config.weights_file, "w-2.safetensors");
}

TEST(ConfigTest, ReadsEveryCellAndTask) {
  EXPECT_EQ(ParseOk(ConfigJson().Set("cell", "\"lstm\"").Build()).cell,
            Cell::kLstm);
  EXPECT_EQ(ParseOk(ConfigJson().Set("cell", "\"gru\"").Build()).cell,
            Cell::kGru);
  EXPECT_EQ(ParseOk(ConfigJson().Set("cell", "\"rnn_tanh\"").Build()).cell,
            Cell::kRnnTanh);
  EXPECT_EQ(ParseOk(ConfigJson().Set("cell", "\"rnn_relu\"").Build()).cell,
            Cell::kRnnRelu);
  EXPECT_EQ(ParseOk(ConfigJson().Set("task", "\"regression\"").Build()).task,
            Task::kRegression);
}

TEST(ConfigTest, RejectsMalformedJson) {
  EXPECT_THAT(Reject(std::string(R"({"format_version": 1,})")),
              HasSubstr("models/x/config.json: malformed JSON at byte 21"));
  Reject(std::string(""));
  Reject(ConfigJson().Build() + "x");
  EXPECT_THAT(Reject(std::string(R"({"version": "1", "version": "2"})")),
              HasSubstr("duplicate key \"version\""));
}

TEST(ConfigTest, RejectsANonObject) {
  EXPECT_THAT(Reject(std::string("[1]")),
              HasSubstr("models/x/config.json: must be a JSON object, got an "
                        "array"));
}

TEST(ConfigTest, RejectsUnknownKeys) {
  EXPECT_THAT(Reject(ConfigJson().Set("hidden", "3")),
              HasSubstr("models/x/config.json: unknown key \"hidden\""));
  Reject(ConfigJson().Set("Cell", "\"lstm\""));  // Keys are case-sensitive.
}

TEST(ConfigTest, RejectsAMissingRequiredKey) {
  for (const char* key : {"format_version", "version", "cell", "input_size",
                          "hidden_size", "output_size", "task"}) {
    EXPECT_THAT(Reject(ConfigJson().Erase(key)),
                HasSubstr(absl::StrCat("models/x/config.json: missing "
                                       "required key \"",
                                       key, "\"")));
  }
}

TEST(ConfigTest, RejectsAnotherFormatVersion) {
  EXPECT_THAT(Reject(ConfigJson().Set("format_version", "2")),
              HasSubstr("\"format_version\" must be 1, got 2"));
  EXPECT_THAT(Reject(ConfigJson().Set("format_version", "\"1\"")),
              HasSubstr("got \"1\""));
  EXPECT_THAT(Reject(ConfigJson().Set("format_version", "1.0")),
              HasSubstr("got 1.0"));
}

TEST(ConfigTest, RejectsABadVersion) {
  EXPECT_THAT(Reject(ConfigJson().Set("version", "\"\"")),
              HasSubstr("\"version\" must not be empty"));
  EXPECT_THAT(Reject(ConfigJson().Set("version", "3")),
              HasSubstr("\"version\" must be a string, got 3"));
}

TEST(ConfigTest, RejectsAnUnknownCellOrTask) {
  EXPECT_THAT(
      Reject(ConfigJson().Set("cell", "\"LSTM\"")),
      HasSubstr("\"cell\" must be one of \"lstm\", \"gru\", \"rnn_tanh\", "
                "\"rnn_relu\", got \"LSTM\""));
  EXPECT_THAT(Reject(ConfigJson().Set("cell", "4")), HasSubstr("got 4"));
  EXPECT_THAT(Reject(ConfigJson().Set("task", "\"ranking\"")),
              HasSubstr("\"task\" must be one of \"classification\", "
                        "\"regression\", got \"ranking\""));
}

// The example of the brief, word for word.
TEST(ConfigTest, RejectsASizeThatIsNotAnInteger) {
  EXPECT_EQ(Reject(ConfigJson().Set("hidden_size", "\"abc\"")),
            "models/x/config.json: \"hidden_size\" must be an integer >= 1, "
            "got \"abc\"");
}

TEST(ConfigTest, RejectsEveryKindOfBadSize) {
  for (const char* key :
       {"input_size", "hidden_size", "num_layers", "output_size"}) {
    for (const char* bad : {"0", "-1", "2.5", "64.0", "1e2", "true", "null",
                            "[]", "\"3\"", "99999999999999999999"}) {
      SCOPED_TRACE(absl::StrCat(key, " = ", bad));
      EXPECT_THAT(
          Reject(ConfigJson().Set(key, bad)),
          HasSubstr(absl::StrCat("\"", key, "\" must be an integer >= 1")));
    }
  }
  EXPECT_THAT(Reject(ConfigJson().Set("hidden_size", "65537")),
              HasSubstr("\"hidden_size\" must be at most 65536, got 65537"));
  EXPECT_THAT(Reject(ConfigJson().Set("input_size", "4294967297")),
              HasSubstr("\"input_size\" must be at most 65536"));
  EXPECT_THAT(Reject(ConfigJson().Set("num_layers", "65")),
              HasSubstr("\"num_layers\" must be at most 64, got 65"));
  EXPECT_THAT(Reject(ConfigJson().Set("output_size", "70000")),
              HasSubstr("\"output_size\" must be at most 65536"));
}

TEST(ConfigTest, RejectsAbsurdlyLargeModels) {
  EXPECT_THAT(
      Reject(ConfigJson().Set("hidden_size", "65536").Set("num_layers", "64")),
      HasSubstr("more than the limit of 268435456"));
}

TEST(ConfigTest, RejectsNonBooleans) {
  for (const char* key : {"bidirectional", "bias"}) {
    for (const char* bad : {"1", "0", "\"true\"", "null"}) {
      EXPECT_THAT(Reject(ConfigJson().Set(key, bad)),
                  HasSubstr(absl::StrCat(
                      "\"", key, "\" must be true or false, got ", bad)));
    }
  }
}

TEST(ConfigTest, RejectsBidirectionalRegression) {
  EXPECT_THAT(Reject(ConfigJson()
                         .Set("task", "\"regression\"")
                         .Set("bidirectional", "true")),
              HasSubstr("models/x/config.json: \"bidirectional\" is only "
                        "allowed with \"task\" \"classification\""));
}

TEST(ConfigTest, ReadsASequentialHeadAndAReadout) {
  ModelConfig config =
      ParseOk(ConfigJson()
                  .Set("readout", "\"final_state\"")
                  .Set("head", R"([{"linear": 16}, {"activation": "relu"},
                           {"dropout": 0.2}, {"activation": "gelu"},
                           {"linear": 2}, {"dropout": 0}])")
                  .Build());
  EXPECT_EQ(config.readout, Readout::kFinalState);
  using K = HeadLayerKind;
  EXPECT_THAT(config.head,
              ElementsAre(HeadLayer{K::kLinear, 16}, HeadLayer{K::kRelu, 0},
                          HeadLayer{K::kDropout, 0}, HeadLayer{K::kGelu, 0},
                          HeadLayer{K::kLinear, 2}, HeadLayer{K::kDropout, 0}));
  for (const auto& [name, readout] :
       {std::pair{"last_output", Readout::kLastOutput},
        std::pair{"mean", Readout::kMean}, std::pair{"max", Readout::kMax}}) {
    EXPECT_EQ(
        ParseOk(
            ConfigJson().Set("readout", absl::StrCat("\"", name, "\"")).Build())
            .readout,
        readout);
  }
  for (const char* act : {"tanh", "sigmoid"}) {
    EXPECT_EQ(ParseOk(ConfigJson()
                          .Set("head", absl::StrCat(R"([{"activation": ")", act,
                                                    R"("}, {"linear": 2}])"))
                          .Build())
                  .head.size(),
              2u);
  }
}

TEST(ConfigTest, WithoutHeadOrReadoutKeepsTheSingleLinearOnLastOutput) {
  ModelConfig config = ParseOk(ConfigJson().Build());
  EXPECT_TRUE(config.head.empty());
  EXPECT_EQ(config.readout, Readout::kLastOutput);
}

TEST(ConfigTest, RejectsReadoutWithRegression) {
  for (const char* readout : {"\"last_output\"", "\"mean\""}) {
    EXPECT_THAT(
        Reject(
            ConfigJson().Set("task", "\"regression\"").Set("readout", readout)),
        HasSubstr("models/x/config.json: \"readout\" is only allowed "
                  "with \"task\" \"classification\""));
  }
}

TEST(ConfigTest, RejectsAnUnknownReadout) {
  EXPECT_THAT(Reject(ConfigJson().Set("readout", "\"attention\"")),
              HasSubstr("\"readout\" must be one of \"last_output\", "
                        "\"final_state\", \"mean\", \"max\", got "));
}

TEST(ConfigTest, RejectsBadHeads) {
  const auto head = [](const char* json) {
    return Reject(ConfigJson().Set("head", json));
  };
  EXPECT_THAT(head("[]"), HasSubstr("\"head\" must be a non-empty array"));
  EXPECT_THAT(head(R"({"linear": 2})"),
              HasSubstr("\"head\" must be a non-empty array"));
  EXPECT_THAT(head(R"([{"linear": 2, "activation": "relu"}])"),
              HasSubstr("\"head\"[0] must be an object with one key: "
                        "\"linear\""));
  EXPECT_THAT(head(R"([{"conv": 3}, {"linear": 2}])"),
              HasSubstr("\"head\"[0] must be an object with one key"));
  EXPECT_THAT(head(R"([{"linear": 0}, {"linear": 2}])"),
              HasSubstr("\"head\"[0] \"linear\" must be an integer in [1, "
                        "65536], got 0"));
  EXPECT_THAT(head(R"([{"linear": 2.5}])"),
              HasSubstr("\"head\"[0] \"linear\" must be an integer"));
  EXPECT_THAT(head(R"([{"activation": "swish"}, {"linear": 2}])"),
              HasSubstr("\"head\"[0] \"activation\" must be one of \"relu\", "
                        "\"tanh\", \"sigmoid\", \"gelu\", got \"swish\""));
  EXPECT_THAT(head(R"([{"dropout": 1}, {"linear": 2}])"),
              HasSubstr("\"head\"[0] \"dropout\" must be a number in [0, 1)"));
  EXPECT_THAT(head(R"([{"activation": "relu"}])"),
              HasSubstr("\"head\" must hold at least one {\"linear\": width}"));
  EXPECT_THAT(head(R"([{"linear": 2}, {"activation": "tanh"}])"),
              HasSubstr("\"head\"[1] \"tanh\" follows the last linear layer"));
  EXPECT_THAT(head(R"([{"linear": 8}, {"activation": "relu"}, {"linear": 3}])"),
              HasSubstr("\"head\"[2], the last linear layer, has width 3, "
                        "expected \"output_size\" 2"));
}

TEST(ConfigTest, RejectsBadLabels) {
  EXPECT_THAT(Reject(ConfigJson().Set("labels", R"(["a"])")),
              HasSubstr("\"labels\" has 1 entries, expected one per output "
                        "(\"output_size\" 2)"));
  EXPECT_THAT(Reject(ConfigJson().Set("labels", "[]")),
              HasSubstr("\"labels\" has 0 entries"));
  EXPECT_THAT(Reject(ConfigJson().Set("labels", R"(["a", "b", "c"])")),
              HasSubstr("has 3 entries"));
  EXPECT_THAT(Reject(ConfigJson().Set("labels", R"("a,b")")),
              HasSubstr("\"labels\" must be an array of strings, got \"a,b\""));
  EXPECT_THAT(Reject(ConfigJson().Set("labels", R"(["a", 2])")),
              HasSubstr("\"labels\"[1] must be a string, got 2"));
  EXPECT_THAT(Reject(ConfigJson()
                         .Set("task", "\"regression\"")
                         .Set("labels", R"(["a", "b"])")),
              HasSubstr("\"labels\" is only allowed with \"task\" "
                        "\"classification\""));
  // Even an empty list says the author expected classes.
  Reject(ConfigJson().Set("task", "\"regression\"").Set("labels", "[]"));
}

TEST(ConfigTest, RejectsAWeightsNameOutsideTheFolder) {
  for (const char* bad :
       {R"("")", R"(".")", R"("..")", R"("../w")", R"("sub/w")",
        R"("/etc/passwd")", R"("a\\b")", R"("a\u0000b")"}) {
    EXPECT_THAT(Reject(ConfigJson().Set("weights", bad)),
                HasSubstr("\"weights\" must be a plain file name"))
        << bad;
  }
  EXPECT_THAT(Reject(ConfigJson().Set("weights", "1")),
              HasSubstr("\"weights\" must be a string, got 1"));
}

TEST(ConfigTest, RejectsBadDescriptionOrTraining) {
  EXPECT_THAT(Reject(ConfigJson().Set("description", "[]")),
              HasSubstr("\"description\" must be a string, got an array"));
  EXPECT_THAT(Reject(ConfigJson().Set("training", "\"Adam\"")),
              HasSubstr("\"training\" must be an object, got \"Adam\""));
}

TEST(ConfigTest, EveryTruncationIsRejectedWithoutACrash) {
  const std::string json =
      ConfigJson().Set("labels", R"(["a", "b"])").Set("training", "{}").Build();
  ParseOk(json);
  for (size_t n = 0; n + 2 < json.size(); ++n) {
    EXPECT_FALSE(ParseModelConfig(json.substr(0, n), kSource).ok()) << n;
  }
}

TEST(ConfigTest, ReadsAStreamModelsOutputActivationAndLabels) {
  using A = OutputActivation;
  for (const auto& [name, activation] :
       {std::pair{"none", A::kNone}, std::pair{"sigmoid", A::kSigmoid},
        std::pair{"softmax", A::kSoftmax}}) {
    EXPECT_EQ(
        ParseOk(ConfigJson()
                    .Set("task", "\"regression\"")
                    .Set("output_activation", absl::StrCat("\"", name, "\""))
                    .Build())
            .output_activation,
        activation);
  }
  EXPECT_EQ(ParseOk(ConfigJson().Set("task", "\"regression\"").Build())
                .output_activation,
            A::kNone);
  const ModelConfig config =
      ParseOk(ConfigJson()
                  .Set("task", "\"regression\"")
                  .Set("output_activation", "\"softmax\"")
                  .Set("labels", R"(["yes", "no"])")
                  .Build());
  EXPECT_THAT(config.labels, ElementsAre("yes", "no"));
}

TEST(ConfigTest, RejectsOutputActivationWhereItDoesNotBelong) {
  EXPECT_THAT(Reject(ConfigJson().Set("output_activation", "\"softmax\"")),
              HasSubstr("models/x/config.json: \"output_activation\" is only "
                        "allowed with \"task\" \"regression\""));
  EXPECT_THAT(Reject(ConfigJson()
                         .Set("task", "\"regression\"")
                         .Set("output_activation", "\"relu\"")),
              HasSubstr("\"output_activation\" must be one of \"none\", "
                        "\"sigmoid\", \"softmax\", got \"relu\""));
  // Labels name classes: a stream model's outputs are classes only with an
  // activation.
  for (const char* activation : {"", "\"none\""}) {
    ConfigJson json;
    json.Set("task", "\"regression\"").Set("labels", R"(["yes", "no"])");
    if (*activation != '\0') json.Set("output_activation", activation);
    EXPECT_THAT(Reject(json), HasSubstr("\"labels\" is only allowed"));
  }
}

}  // namespace
}  // namespace rnnserve::model

namespace rnnserve::model {
namespace {

TEST(EmbeddingConfigTest, ReadsTheEmbedding) {
  const ModelConfig config = ParseOk(
      testing::ConfigJson()
          .Set(
              "embedding",
              R"({"num_embeddings": 100, "embedding_dim": 3, "padding_idx": 0})")
          .Build());
  EXPECT_TRUE(config.has_embedding());
  EXPECT_EQ(config.embedding.num_embeddings, 100);
  EXPECT_EQ(config.embedding.embedding_dim, 3);
  EXPECT_EQ(config.embedding.padding_idx, 0);
  const ModelConfig plain = ParseOk(testing::ConfigJson().Build());
  EXPECT_FALSE(plain.has_embedding());
  EXPECT_EQ(ParseOk(testing::ConfigJson()
                        .Set("embedding",
                             R"({"num_embeddings": 5, "embedding_dim": 3})")
                        .Build())
                .embedding.padding_idx,
            -1);
}

TEST(EmbeddingConfigTest, RefusalsNameTheKey) {
  const auto reject = [](const std::string& embedding) {
    return Reject(testing::ConfigJson().Set("embedding", embedding));
  };
  EXPECT_THAT(reject("7"), HasSubstr("\"embedding\" must be an object"));
  EXPECT_THAT(reject(R"({"num_embeddings": 5})"),
              HasSubstr("\"embedding\" is missing the key \"embedding_dim\""));
  EXPECT_THAT(reject(R"({"num_embeddings": 0, "embedding_dim": 3})"),
              HasSubstr("\"embedding\" \"num_embeddings\" must be an integer "
                        "in [1, 67108864], got 0"));
  EXPECT_THAT(
      reject(R"({"num_embeddings": 5, "embedding_dim": 4})"),
      HasSubstr(
          "\"embedding\" \"embedding_dim\" 4 must equal \"input_size\" 3"));
  EXPECT_THAT(reject(R"({"num_embeddings": 5, "embedding_dim": 3, )"
                     R"("padding_idx": 5})"),
              HasSubstr("\"embedding\" \"padding_idx\" must be an integer in "
                        "[0, 4], got 5"));
  EXPECT_THAT(reject(R"({"num_embeddings": 5, "embedding_dim": 3, )"
                     R"("max_norm": 1})"),
              HasSubstr("\"embedding\" has the unknown key \"max_norm\""));
}

// A model of four token ids whose tokenizer reads characters.
testing::ConfigJson TokenConfig(const std::string& tokenizer) {
  return testing::ConfigJson()
      .Set("embedding", R"({"num_embeddings": 4, "embedding_dim": 3})")
      .Set("tokenizer", tokenizer);
}

TEST(TokenizerConfigTest, ReadsTheTokenizer) {
  const ModelConfig config = ParseOk(
      TokenConfig(R"({"type": "characters", "tokens": ["<unk>", "a", "é", )"
                  R"("ł"], "unknown_id": 0, "lowercase": true})")
          .Build());
  EXPECT_EQ(config.tokenizer.tokens,
            (std::vector<std::string>{"<unk>", "a", "é", "ł"}));
  EXPECT_EQ(config.tokenizer.unknown_id, 0);
  EXPECT_TRUE(config.tokenizer.lowercase);
  const ModelConfig plain = ParseOk(
      TokenConfig(R"({"type": "characters", "tokens": ["a", "b", "c", "d"]})")
          .Build());
  EXPECT_EQ(plain.tokenizer.unknown_id, -1);
  EXPECT_FALSE(plain.tokenizer.lowercase);
}

TEST(TokenizerConfigTest, RefusalsNameTheKey) {
  const auto reject = [](const std::string& tokenizer) {
    return Reject(TokenConfig(tokenizer));
  };
  EXPECT_THAT(Reject(testing::ConfigJson().Set(
                  "tokenizer", R"({"type": "characters", "tokens": []})")),
              HasSubstr("\"tokenizer\" is only allowed with an \"embedding\""));
  EXPECT_THAT(reject("[]"), HasSubstr("\"tokenizer\" must be an object"));
  EXPECT_THAT(reject(R"({"type": "words", "tokens": ["a", "b", "c", "d"]})"),
              HasSubstr("\"type\" must be \"characters\", got \"words\""));
  EXPECT_THAT(reject(R"({"type": "characters", "tokens": ["a", "b", "c"]})"),
              HasSubstr("\"tokens\" must be an array of \"num_embeddings\" "
                        "(4) strings"));
  EXPECT_THAT(
      reject(R"({"type": "characters", "tokens": ["a", "bc", "c", "d"]})"),
      HasSubstr("\"tokens\"[1] must be one character"));
  EXPECT_THAT(
      reject(R"({"type": "characters", "tokens": ["a", "b", "a", "d"]})"),
      HasSubstr("\"tokens\"[2] \"a\" appears twice"));
  EXPECT_THAT(reject(R"({"type": "characters", "tokens": ["a", "b", "c", )"
                     R"("d"], "unknown_id": 4})"),
              HasSubstr("\"unknown_id\" must be an integer in [0, 4), got 4"));
  EXPECT_THAT(reject(R"({"type": "characters", "tokens": ["a", "b", "c", )"
                     R"("d"], "lowercase": 1})"),
              HasSubstr("\"lowercase\" must be true or false, got 1"));
  EXPECT_THAT(reject(R"({"type": "characters", "tokens": ["a", "b", "c", )"
                     R"("d"], "merges": []})"),
              HasSubstr("\"tokenizer\" has the unknown key \"merges\""));
}

}  // namespace
}  // namespace rnnserve::model
