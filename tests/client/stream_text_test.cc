// rnnctl stream --text against a real in-process server. The model is the
// golden case emb_rnn_tanh_reg_1l (vocabulary 25) copied into a temporary
// folder with a "tokenizer" added to its config: "<unk>" (the unknown id),
// then a..t, é, ł, ß and the space, lower-cased. Text streams as the ids of
// its characters (checked by hand), answers what those ids answer, and, for
// text spelling a golden sequence, PyTorch's per-step outputs; a model
// without a tokenizer is refused, naming --text.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "client/common_flags.h"
#include "client/connection.h"
#include "client/model_info.h"
#include "client/stream_inputs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/test_server.h"

namespace rnnserve::client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// See tests/engine/engine_golden_test.cc for why 1e-5 against PyTorch.
constexpr float kPyTorchTolerance = 1e-5f;
constexpr char kGolden[] = "emb_rnn_tanh_reg_1l";
constexpr char kText[] = "emb_text_reg";
constexpr char kValues[] = "gru_reg_2l_softmax";

// The tokenizer's tokens, id by id: 0 is the unknown id's name.
std::vector<std::string> Tokens() {
  std::vector<std::string> tokens = {"<unk>"};
  for (char c = 'a'; c <= 't'; ++c) tokens.push_back(std::string(1, c));
  for (const char* c : {"é", "ł", "ß", " "}) tokens.push_back(c);
  return tokens;  // 25, the golden's vocabulary.
}

// Copies the golden case to `dir`/emb_text_reg with a tokenizer in its
// config; returns the model folder.
std::filesystem::path WriteTextModel(const std::filesystem::path& dir) {
  const std::filesystem::path model = dir / kText;
  std::filesystem::remove_all(model);
  std::filesystem::create_directories(model);
  std::filesystem::copy(testing::GoldensDir() / kGolden, model);
  std::ifstream in(model / "config.json");
  std::stringstream config;
  config << in.rdbuf();
  std::string json = config.str();
  std::string tokens;
  for (const std::string& t : Tokens()) {
    absl::StrAppend(&tokens, tokens.empty() ? "" : ", ", "\"", t, "\"");
  }
  json.insert(json.rfind('}'),
              absl::StrCat(",\n  \"tokenizer\": {\"type\": \"characters\", ",
                           "\"tokens\": [", tokens,
                           "], \"unknown_id\": 0, \"lowercase\": true}\n"));
  std::ofstream(model / "config.json") << json;
  return model;
}

class StreamTextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::filesystem::path dir = absl::StrCat(
        ::testing::TempDir(), "/stream_text_", getpid(), "_", ++runs_);
    server_ = std::make_unique<testing::TestServer>(testing::LoadModels(
        {WriteTextModel(dir).string(), absl::StrCat("tests/goldens/", kGolden),
         absl::StrCat("tests/goldens/", kValues)}));
    ASSERT_TRUE(server_->ok());
    common_.server = server_->address();
    absl::StatusOr<std::unique_ptr<Connection>> connection =
        Connection::Create(common_);
    ASSERT_TRUE(connection.ok()) << connection.status();
    connection_ = std::move(*connection);
    absl::StatusOr<v1::ModelInfo> info = FetchModel(*connection_, kText);
    ASSERT_TRUE(info.ok()) << info.status();
    model_ = *info;
  }

  std::vector<std::string> Args(std::vector<std::string> more) {
    std::vector<std::string> args = {"--server", common_.server};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }

  absl::StatusOr<SequenceRun> Stream(const StreamInputs& inputs,
                                     RegressSession::Transport transport) {
    SequenceOptions options;
    options.model = kText;
    options.chunk = 4;  // The state is carried across chunks.
    options.transport = transport;
    options.end_session = true;
    return StreamSequence(*connection_, options, model_, inputs);
  }

  static inline int runs_ = 0;
  std::unique_ptr<testing::TestServer> server_;
  CommonOptions common_;
  std::unique_ptr<Connection> connection_;
  v1::ModelInfo model_;
};

TEST_F(StreamTextTest, TheServerDescribesTheTokenizer) {
  ASSERT_TRUE(model_.has_tokenizer());
  EXPECT_EQ(model_.tokenizer().type(), "characters");
  EXPECT_EQ(model_.tokenizer().tokens_size(), 25);
  EXPECT_EQ(model_.tokenizer().tokens(21), "é");
  EXPECT_EQ(model_.tokenizer().unknown_id(), 0u);
  EXPECT_TRUE(model_.tokenizer().lowercase());
}

TEST_F(StreamTextTest, EachCharacterIsOneStepOfItsId) {
  absl::StatusOr<StreamInputs> inputs = ParseStreamText("Abé ŁSß?z\n", model_);
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  // By hand: a=1, b=2, é=21, space=24, ł=22, s=19, ß=23; "?", "z" (past t)
  // and the newline are not tokens: the unknown id 0.
  EXPECT_THAT(inputs->token_ids,
              ElementsAre(1, 2, 21, 24, 22, 19, 23, 0, 0, 0));
  EXPECT_EQ(inputs->steps, 10);
  EXPECT_EQ(inputs->flag, "--text");
  EXPECT_THAT(inputs->characters,
              ElementsAre("A", "b", "é", " ", "Ł", "S", "ß", "?", "z", "\n"));
  EXPECT_EQ(inputs->Describe(0), "1 \"A\"");
  EXPECT_EQ(inputs->Describe(4), "22 \"Ł\"");
  EXPECT_EQ(inputs->Describe(9), "0 U+000A");
}

// The text whose ids are golden sequence `index`'s, in mixed case: id 0
// (the unknown id) as "?", letters upper-case at even steps.
std::string GoldenText(const testing::Golden& g, int index, int steps,
                       int t_max) {
  const std::vector<std::string> tokens = Tokens();
  std::string text;
  for (int t = 0; t < steps; ++t) {
    const int64_t id = g.I64("tokens")[index * t_max + t];
    std::string c = id == 0 ? "?" : tokens[id];
    if (t % 2 == 0 && c.size() == 1 && c[0] >= 'a' && c[0] <= 't') {
      c[0] = static_cast<char>(c[0] - 'a' + 'A');
    } else if (t % 2 == 0 && c == "é") {
      c = "É";
    } else if (t % 2 == 0 && c == "ł") {
      c = "Ł";
    }
    text += c;
  }
  return text;
}

TEST_F(StreamTextTest, TextAnswersItsIdsAndPyTorchsOutputs) {
  const testing::Golden g = testing::ReadGolden(testing::GoldensDir() /
                                                kGolden / "golden.safetensors");
  const std::vector<int64_t>& lengths = g.I64("lengths");
  const int n = static_cast<int>(lengths.size());
  const int t_max =
      static_cast<int>(*std::max_element(lengths.begin(), lengths.end()));
  const int outputs = static_cast<int>(model_.output_size());
  for (int i = 0; i < n; ++i) {
    const int steps = static_cast<int>(lengths[i]);
    const std::string text = GoldenText(g, i, steps, t_max);
    SCOPED_TRACE(absl::StrCat("sequence ", i, ": \"", text, "\""));
    absl::StatusOr<StreamInputs> by_text = ParseStreamText(text, model_);
    ASSERT_TRUE(by_text.ok()) << by_text.status();
    std::vector<std::string> ids;
    for (int t = 0; t < steps; ++t) {
      ids.push_back(absl::StrCat(g.I64("tokens")[i * t_max + t]));
    }
    absl::StatusOr<StreamInputs> by_ids =
        ParseStreamTokens(absl::StrJoin(ids, ","), model_);
    ASSERT_TRUE(by_ids.ok()) << by_ids.status();
    EXPECT_EQ(by_text->token_ids, by_ids->token_ids);
    const auto transport = i % 2 == 0 ? RegressSession::Transport::kStream
                                      : RegressSession::Transport::kUnary;
    absl::StatusOr<SequenceRun> text_run = Stream(*by_text, transport);
    absl::StatusOr<SequenceRun> ids_run = Stream(*by_ids, transport);
    ASSERT_TRUE(text_run.ok()) << text_run.status();
    ASSERT_TRUE(ids_run.ok()) << ids_run.status();
    ASSERT_EQ(text_run->steps.size(), static_cast<size_t>(steps));
    ASSERT_EQ(ids_run->steps.size(), static_cast<size_t>(steps));
    const float* want = g.F32("outputs_from_zero").data() + i * t_max * outputs;
    for (int t = 0; t < steps; ++t) {
      EXPECT_EQ(text_run->steps[t].outputs, ids_run->steps[t].outputs)
          << "step " << t;
      for (int o = 0; o < outputs; ++o) {
        EXPECT_NEAR(text_run->steps[t].outputs[o], want[t * outputs + o],
                    kPyTorchTolerance)
            << "step " << t << " output " << o;
      }
    }
  }
}

TEST_F(StreamTextTest, TheCommandPrintsEachCharacterAndItsId) {
  ::testing::internal::CaptureStdout();
  const absl::Status status =
      RunStream(Args({"--model", kText, "--text", "Béłx", "--chunk", "3"}));
  const std::string out = ::testing::internal::GetCapturedStdout();
  ASSERT_TRUE(status.ok()) << status;
  // "STEP  TOKEN  OUTPUTS", then per step: step, id, "character", outputs.
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> output_columns;  // Where OUTPUTS starts, in characters.
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    std::vector<std::string> cells =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (cells.size() == 5 || (cells.size() == 3 && cells[0] == "STEP")) {
      rows.push_back(cells);
      const std::string& first_output = cells[cells.size() == 5 ? 3 : 2];
      const std::string before(line.substr(0, line.find(first_output)));
      output_columns.push_back(static_cast<size_t>(
          std::count_if(before.begin(), before.end(), [](char c) {
            return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
          })));
    }
  }
  ASSERT_EQ(rows.size(), 5u) << out;
  EXPECT_THAT(rows[0], ElementsAre("STEP", "TOKEN", "OUTPUTS"));
  const std::vector<std::vector<std::string>> want = {{"0", "2", "\"B\""},
                                                      {"1", "21", "\"é\""},
                                                      {"2", "22", "\"ł\""},
                                                      {"3", "0", "\"x\""}};
  for (size_t r = 0; r < want.size(); ++r) {
    EXPECT_EQ(
        std::vector<std::string>(rows[r + 1].begin(), rows[r + 1].begin() + 3),
        want[r]);
  }
  // The columns line up on characters, "é" and "ł" being two bytes each.
  for (size_t r = 1; r < output_columns.size(); ++r) {
    EXPECT_EQ(output_columns[r], output_columns[0]) << out;
  }
  EXPECT_THAT(out, HasSubstr("steps        4 in 2 chunks of up to 3"));
  EXPECT_THAT(out, HasSubstr("--text <the next characters>"));
}

TEST_F(StreamTextTest, TextIsRefusedWithoutATokenizer) {
  absl::Status status = RunStream(Args({"--model", kGolden, "--text", "ab"}));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(),
              HasSubstr("--text: model \"emb_rnn_tanh_reg_1l\" has no "
                        "tokenizer"));
  EXPECT_THAT(status.message(), HasSubstr("--tokens"));
  status = RunStream(Args({"--model", kValues, "--text", "ab"}));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("--text"));
  EXPECT_THAT(status.message(), HasSubstr("use --csv"));
  EXPECT_THAT(
      RunStream(Args({"--model", kText, "--text", "ab", "--tokens", "1"}))
          .message(),
      HasSubstr("pass one"));
  EXPECT_THAT(
      RunStream(Args({"--model", kText, "--text", "ab", "--plot", "x.svg"}))
          .message(),
      HasSubstr("--plot belongs to the sine demo; it does not apply with "
                "--text"));
  // The sine demo points a model with a tokenizer to --text.
  EXPECT_THAT(RunStream(Args({"--model", kText})).message(),
              HasSubstr("or text with --text"));
}

}  // namespace
}  // namespace rnnserve::client
