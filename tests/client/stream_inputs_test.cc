// rnnctl stream --tokens / --csv / --top-k against a real in-process server:
// the steps it streams in chunks answer PyTorch's per-step outputs of a new
// session (outputs_from_zero of the goldens), each step's best classes are
// the golden probabilities ranked, and --top-k is refused, naming the flag,
// for a model whose steps have no classes.
#include "client/stream_inputs.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "client/common_flags.h"
#include "client/connection.h"
#include "client/model_info.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/test_server.h"

namespace rnnserve::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// See tests/engine/engine_golden_test.cc for why 1e-5 against PyTorch.
constexpr float kPyTorchTolerance = 1e-5f;
constexpr char kSoftmax[] = "gru_reg_2l_softmax";
constexpr char kTokens[] = "emb_rnn_tanh_reg_1l";

// Sequence `index` of a regression golden case: its inputs (values or
// token ids) and the outputs a new session answers.
struct GoldenStream {
  int steps = 0, width = 0, outputs = 0;
  std::vector<float> values;
  std::vector<int64_t> tokens;
  std::vector<float> want;  // (steps, outputs)

  GoldenStream(const std::string& name, int index) {
    const testing::Golden g = testing::ReadGolden(testing::GoldensDir() / name /
                                                  "golden.safetensors");
    const std::vector<int64_t>& lengths = g.I64("lengths");
    const int n = static_cast<int>(lengths.size());
    const int t_max =
        static_cast<int>(*std::max_element(lengths.begin(), lengths.end()));
    steps = static_cast<int>(lengths[index]);
    outputs = static_cast<int>(g.F32("outputs_from_zero").size()) / (n * t_max);
    if (testing::IsTokenCase(name)) {
      const int64_t* ids = g.I64("tokens").data() + index * t_max;
      tokens.assign(ids, ids + steps);
    } else {
      width = static_cast<int>(g.F32("inputs").size()) / (n * t_max);
      const float* in = g.F32("inputs").data() + index * t_max * width;
      values.assign(in, in + steps * width);
    }
    const float* out =
        g.F32("outputs_from_zero").data() + index * t_max * outputs;
    want.assign(out, out + steps * outputs);
  }

  // The classes of step t, most probable first.
  std::vector<int> Ranked(int t) const {
    std::vector<int> order(outputs);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return want[t * outputs + a] > want[t * outputs + b];
    });
    return order;
  }

  // The values as a CSV file of one step per line.
  std::string WriteCsv() const {
    const std::string path = absl::StrCat(::testing::TempDir(), "/stream_",
                                          getpid(), "_", steps, ".csv");
    std::ofstream out(path);
    for (int t = 0; t < steps; ++t) {
      out << absl::StrJoin(values.begin() + t * width,
                           values.begin() + (t + 1) * width, ",")
          << "\n";
    }
    return path;
  }
};

class StreamInputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<testing::TestServer>(
        testing::LoadModels({absl::StrCat("tests/goldens/", kSoftmax),
                             absl::StrCat("tests/goldens/", kTokens)}));
    ASSERT_TRUE(server_->ok());
    common_.server = server_->address();
    absl::StatusOr<std::unique_ptr<Connection>> connection =
        Connection::Create(common_);
    ASSERT_TRUE(connection.ok()) << connection.status();
    connection_ = std::move(*connection);
  }

  v1::ModelInfo Model(const std::string& name) {
    absl::StatusOr<v1::ModelInfo> info = FetchModel(*connection_, name);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : v1::ModelInfo();
  }

  std::vector<std::string> Args(std::vector<std::string> more) {
    std::vector<std::string> args = {"--server", common_.server};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }

  std::unique_ptr<testing::TestServer> server_;
  CommonOptions common_;
  std::unique_ptr<Connection> connection_;
};

void ExpectOutputs(const SequenceRun& run, const GoldenStream& golden) {
  ASSERT_EQ(run.steps.size(), static_cast<size_t>(golden.steps));
  for (int t = 0; t < golden.steps; ++t) {
    EXPECT_EQ(run.steps[t].step, static_cast<uint64_t>(t));
    ASSERT_EQ(run.steps[t].outputs.size(), static_cast<size_t>(golden.outputs));
    for (int o = 0; o < golden.outputs; ++o) {
      EXPECT_NEAR(run.steps[t].outputs[o], golden.want[t * golden.outputs + o],
                  kPyTorchTolerance)
          << "step " << t << " output " << o;
    }
  }
}

TEST_F(StreamInputsTest, CsvStepsWithTopKAnswerTheGoldenClasses) {
  const GoldenStream golden(kSoftmax, 2);  // 12 steps.
  const v1::ModelInfo model = Model(kSoftmax);
  absl::StatusOr<StreamInputs> inputs = LoadStreamCsv(golden.WriteCsv(), model);
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  EXPECT_EQ(inputs->steps, golden.steps);
  ASSERT_TRUE(CheckTopK(2, model).ok());

  SequenceOptions options;
  options.model = kSoftmax;
  options.chunk = 5;  // 5, 5, 2: the state is carried across chunks.
  options.top_k = 2;
  options.end_session = true;
  absl::StatusOr<SequenceRun> run =
      StreamSequence(*connection_, options, model, *inputs);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->chunks, 3);
  EXPECT_TRUE(run->ended);
  ExpectOutputs(*run, golden);
  const std::vector<std::string> labels = {"sil", "yes", "no", "up", "down"};
  for (int t = 0; t < golden.steps; ++t) {
    const std::vector<int> ranked = golden.Ranked(t);
    const v1::StepTop& top = run->steps[t].top;
    ASSERT_EQ(top.top_size(), 2) << "step " << t;
    for (int k = 0; k < 2; ++k) {
      EXPECT_EQ(top.top(k).index(), static_cast<uint32_t>(ranked[k]));
      EXPECT_EQ(top.top(k).label(), labels[ranked[k]]);
      EXPECT_NEAR(top.top(k).probability(),
                  golden.want[t * golden.outputs + ranked[k]],
                  kPyTorchTolerance);
    }
  }
}

TEST_F(StreamInputsTest, TokensAnswerTheGoldenOutputsOnBothTransports) {
  const GoldenStream golden(kTokens, 3);  // 12 steps, the padding id inside.
  const v1::ModelInfo model = Model(kTokens);
  absl::StatusOr<StreamInputs> inputs =
      ParseStreamTokens(absl::StrJoin(golden.tokens, ","), model);
  ASSERT_TRUE(inputs.ok()) << inputs.status();
  for (const auto transport : {RegressSession::Transport::kStream,
                               RegressSession::Transport::kUnary}) {
    SequenceOptions options;
    options.model = kTokens;
    options.chunk = 5;
    options.transport = transport;
    absl::StatusOr<SequenceRun> run =
        StreamSequence(*connection_, options, model, *inputs);
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_FALSE(run->ended);
    EXPECT_EQ(run->next_step, static_cast<uint64_t>(golden.steps));
    ExpectOutputs(*run, golden);
  }
}

TEST_F(StreamInputsTest, RefusesBadTokensAndTheWrongInputKind) {
  const v1::ModelInfo tokens = Model(kTokens);
  EXPECT_THAT(ParseStreamTokens("1,25", tokens).status().message(),
              HasSubstr("--tokens[1]: \"25\" is not a token id in [0, 25)"));
  EXPECT_THAT(ParseStreamTokens("3,,4", tokens).status().message(),
              HasSubstr("--tokens[1]"));
  EXPECT_EQ(LoadStreamCsv("/nonexistent.csv", tokens).status().code(),
            absl::StatusCode::kFailedPrecondition);
  const v1::ModelInfo values = Model(kSoftmax);
  EXPECT_THAT(ParseStreamTokens("1", values).status().message(),
              HasSubstr("use --csv"));
  // A line of 6 values is not whole steps of 4.
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/stream_", getpid(), "_ragged.csv");
  std::ofstream(path) << "1,2,3,4\n1,2,3,4,5,6\n";
  EXPECT_THAT(LoadStreamCsv(path, values).status().message(),
              HasSubstr("line 2: 6 values are not a whole number of steps of "
                        "input_size 4"));
}

TEST_F(StreamInputsTest, TopKIsRefusedForAModelWithoutClasses) {
  absl::Status status =
      RunStream(Args({"--model", kTokens, "--tokens", "1,2", "--top-k", "2"}));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--top-k"));
  EXPECT_THAT(status.message(), HasSubstr("no output activation"));
  // The sine demo cannot drive either golden model; the message says how.
  EXPECT_THAT(RunStream(Args({"--model", kTokens})).message(),
              HasSubstr("--tokens"));
  EXPECT_THAT(RunStream(Args({"--model", kSoftmax})).message(),
              HasSubstr("--csv"));
  EXPECT_THAT(RunStream(Args({"--model", kSoftmax, "--csv", "x.csv",
                              "--reconnect-every", "2"}))
                  .message(),
              HasSubstr("--reconnect-every belongs to the sine demo"));
}

TEST_F(StreamInputsTest, TheCommandPrintsEachStepsBestClasses) {
  const GoldenStream golden(kSoftmax, 0);  // 7 steps.
  const std::vector<std::string> labels = {"sil", "yes", "no", "up", "down"};
  ::testing::internal::CaptureStdout();
  absl::Status status =
      RunStream(Args({"--model", kSoftmax, "--csv", golden.WriteCsv(),
                      "--chunk", "3", "--top-k", "1", "--end"}));
  const std::string out = ::testing::internal::GetCapturedStdout();
  ASSERT_TRUE(status.ok()) << status;
  // "STEP  INPUT  TOP" rows: the step, its first values, "label p".
  std::map<int, std::vector<std::string>> rows;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    std::vector<std::string> cells =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    int step = 0;
    if (cells.size() == 4 && absl::SimpleAtoi(cells[0], &step)) {
      rows[step] = cells;
    }
  }
  ASSERT_EQ(rows.size(), static_cast<size_t>(golden.steps)) << out;
  for (int t = 0; t < golden.steps; ++t) {
    const int best = golden.Ranked(t)[0];
    EXPECT_EQ(rows[t][2], labels[best]) << "step " << t;
    float p = 0;
    ASSERT_TRUE(absl::SimpleAtof(rows[t][3], &p)) << rows[t][3];
    // Printed with 6 decimals.
    EXPECT_NEAR(p, golden.want[t * golden.outputs + best], 1e-6 + 1e-5);
  }
  EXPECT_THAT(out, HasSubstr("steps        7 in 3 chunks of up to 3"));
  EXPECT_THAT(out, HasSubstr("session      ended"));
  EXPECT_THAT(out, Not(HasSubstr("mse")));
}

}  // namespace
}  // namespace rnnserve::client
