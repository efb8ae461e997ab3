#include "tests/testing/values.h"

#include "gtest/gtest.h"

namespace rnnserve::testing {

std::vector<float> RandomValues(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

void ExpectAllNear(std::span<const float> got, std::span<const float> want,
                   float tolerance, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tolerance) << what << ", value " << i;
  }
}

}  // namespace rnnserve::testing
