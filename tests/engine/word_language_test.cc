// The shipped word_language model (embedding, bidirectional GRU, final-state
// readout, MLP head) on real words: its logits for 900 held-out words and a
// few more, batched with mixed lengths, must be PyTorch's.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/engine/dnnl_engine.h"
#include "server/model/loader.h"
#include "tests/testing/golden.h"

namespace rnnserve::engine {
namespace {

TEST(WordLanguageTest, ShippedModelPredictsAsPyTorchOnHeldOutWords) {
  auto model = model::LoadModel(testing::SourceDir() / "models/word_language");
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->config.has_embedding());
  const int classes = model->config.output_size;
  auto engine = CreateDnnlEngine(*model);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const testing::Golden golden = testing::ReadGolden(
      testing::GoldensDir() / "word_language_words.safetensors");
  const std::vector<int64_t>& tokens = golden.I64("tokens");
  const std::vector<int64_t>& lengths = golden.I64("lengths");
  const std::vector<int64_t>& labels = golden.I64("labels");
  const std::vector<int64_t>& want = golden.I64("predictions");
  const std::vector<float>& want_logits = golden.F32("logits");
  const int n = static_cast<int>(lengths.size());
  ASSERT_GT(n, 900);
  const size_t t_max = tokens.size() / n;

  // In batches of 64 words of whatever lengths, as a server would run them.
  std::vector<float> logits(n * classes);
  for (int first = 0; first < n; first += 64) {
    std::vector<ClassifyItem> items;
    for (int i = first; i < std::min(first + 64, n); ++i) {
      ClassifyItem item;
      item.steps = static_cast<int>(lengths[i]);
      item.tokens = {tokens.data() + i * t_max,
                     static_cast<size_t>(lengths[i])};
      item.logits = {logits.data() + i * classes, static_cast<size_t>(classes)};
      items.push_back(item);
    }
    const absl::Status status = (*engine)->Classify(items);
    ASSERT_TRUE(status.ok()) << status;
  }
  int differ = 0, correct = 0, pytorch_correct = 0, not_finite = 0;
  float worst = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float* row = logits.data() + i * classes;
    const int predicted =
        static_cast<int>(std::max_element(row, row + classes) - row);
    if (predicted != want[i]) ++differ;
    if (predicted == labels[i]) ++correct;
    if (want[i] == labels[i]) ++pytorch_correct;
    for (int k = 0; k < classes; ++k) {
      const float error = std::fabs(row[k] - want_logits[i * classes + k]);
      if (!std::isfinite(error)) {
        ++not_finite;
      } else {
        worst = std::max(worst, error);
      }
    }
  }
  EXPECT_EQ(not_finite, 0) << "logits that are NaN or infinite";
  EXPECT_EQ(differ, 0) << "predictions that differ from PyTorch's";
  // Logits of trained models reach ~20: as in fashion_test.
  EXPECT_LE(worst, 5e-5f);
  EXPECT_EQ(correct, pytorch_correct);
  // The model is good at its job, not just equal to PyTorch (the README
  // gives its accuracy on all held-out words).
  EXPECT_GT(correct, 900 * 3 / 4);
}

}  // namespace
}  // namespace rnnserve::engine
