#include "tests/testing/model_copies.h"

#include <fstream>
#include <regex>
#include <sstream>

#include "gtest/gtest.h"
#include "tests/model/test_util.h"
#include "tests/testing/golden.h"

namespace rnnserve::testing {

// See tests/engine/engine_golden_test.cc for why 1e-5 against PyTorch.
constexpr float kTolerance = 1e-5f;

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void CopyAsVersion(const std::string& from, const std::filesystem::path& to,
                   const std::string& version) {
  const std::filesystem::path source = SourceDir() / from;
  const std::string config = std::regex_replace(
      ReadText(source / "config.json"), std::regex(R"x("version":\s*"[^"]*")x"),
      "\"version\": \"" + version + "\"");
  model::testing::WriteFile(to / "config.json", config);
  model::testing::WriteFile(to / "model.safetensors",
                            ReadText(source / "model.safetensors"));
}

SineGolden::SineGolden() {
  const Golden g = ReadGolden(GoldensDir() / "sine_rnn_stream.safetensors");
  inputs = g.F32("inputs");
  outputs = g.F32("outputs");
}

void ExpectSineOutputs(const v1::RegressResponse& response,
                       const SineGolden& golden, size_t from, size_t steps) {
  ASSERT_EQ(response.outputs_size(), static_cast<int>(steps));
  for (size_t i = 0; i < steps; ++i) {
    EXPECT_NEAR(response.outputs(i), golden.outputs[from + i], kTolerance)
        << "step " << from + i;
  }
}

}  // namespace rnnserve::testing
