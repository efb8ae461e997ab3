// Test values: random inputs, and comparing floats against expected ones.
#ifndef RNNSERVE_TESTS_TESTING_VALUES_H_
#define RNNSERVE_TESTS_TESTING_VALUES_H_

#include <cstddef>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace rnnserve::testing {

// `n` values uniform in [-1, 1), as the goldens' inputs.
std::vector<float> RandomValues(size_t n, std::mt19937& rng);

// Fails the current test at the first value of `got` farther than
// `tolerance` from `want` (or on a size mismatch), naming `what` and the
// value's index.
void ExpectAllNear(std::span<const float> got, std::span<const float> want,
                   float tolerance, const std::string& what);

}  // namespace rnnserve::testing

#endif  // RNNSERVE_TESTS_TESTING_VALUES_H_
