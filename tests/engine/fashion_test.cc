// The shipped classifier on real data: its predictions for the first 1,000
// Fashion-MNIST test images must be PyTorch's.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "client/idx_reader.h"
#include "gtest/gtest.h"
#include "server/engine/dnnl_engine.h"
#include "server/model/loader.h"
#include "tests/testing/golden.h"

namespace rnnserve::engine {
namespace {

constexpr char kImages[] =
    "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

TEST(FashionTest, ShippedModelPredictsAsPyTorchOnTheFirstThousandImages) {
  auto model = model::LoadModel(testing::SourceDir() / "models/fashion_lstm");
  ASSERT_TRUE(model.ok()) << model.status();
  auto engine = CreateDnnlEngine(*model);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const testing::Golden golden = testing::ReadGolden(
      testing::GoldensDir() / "fashion_lstm_test1000.safetensors");
  const std::vector<int64_t>& want = golden.I64("predictions");
  const std::vector<float>& want_logits = golden.F32("logits");
  ASSERT_EQ(want.size(), 1000u);

  auto images = client::ReadIdx(kImages, 0, 1000);
  ASSERT_TRUE(images.ok()) << images.status();
  ASSERT_EQ(images->items, 1000);
  ASSERT_EQ(images->item_size(), 28 * 28);
  // Pixels scaled to [0, 1], rows as steps, as the model was trained.
  std::vector<float> pixels(images->data.size());
  for (size_t i = 0; i < pixels.size(); ++i) {
    pixels[i] = images->data[i] / 255.0f;
  }
  // In batches of 64, as a server would run them.
  std::vector<float> logits(1000 * 10);
  for (int first = 0; first < 1000; first += 64) {
    std::vector<ClassifyItem> items;
    for (int i = first; i < std::min(first + 64, 1000); ++i) {
      items.push_back({28,
                       {pixels.data() + i * 784, 784},
                       {logits.data() + i * 10, 10},
                       {}});
    }
    ASSERT_TRUE((*engine)->Classify(items).ok());
  }
  int differ = 0, correct = 0, pytorch_correct = 0, not_finite = 0;
  float worst = 0.0f;
  const std::vector<int64_t>& labels = golden.I64("labels");
  for (int i = 0; i < 1000; ++i) {
    const float* row = logits.data() + i * 10;
    const int predicted =
        static_cast<int>(std::max_element(row, row + 10) - row);
    if (predicted != want[i]) ++differ;
    if (predicted == labels[i]) ++correct;
    if (want[i] == labels[i]) ++pytorch_correct;
    for (int k = 0; k < 10; ++k) {
      // std::max would pass a NaN over; count it instead.
      const float error = std::fabs(row[k] - want_logits[i * 10 + k]);
      if (!std::isfinite(error)) {
        ++not_finite;
      } else {
        worst = std::max(worst, error);
      }
    }
  }
  EXPECT_EQ(not_finite, 0) << "logits that are NaN or infinite";
  EXPECT_EQ(differ, 0) << "predictions that differ from PyTorch's";
  // Logits are larger here than in the random goldens (up to ~20), so the
  // same relative rounding gives a few times 1e-6; see engine_golden_test.
  EXPECT_LE(worst, 5e-5f);
  EXPECT_EQ(correct, pytorch_correct);
}

}  // namespace
}  // namespace rnnserve::engine
