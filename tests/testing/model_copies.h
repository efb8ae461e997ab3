// Model folders for tests that serve several versions of a model: the
// PyTorch goldens copied as numbered versions, and the seed regressor's
// golden stream to check a session's outputs against.
#ifndef RNNSERVE_TESTS_TESTING_MODEL_COPIES_H_
#define RNNSERVE_TESTS_TESTING_MODEL_COPIES_H_

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "rnnserve/v1/inference.pb.h"

namespace rnnserve::testing {

// The bytes of the file at `path`.
std::string ReadText(const std::filesystem::path& path);

// Copies model folder `from` (relative to the source tree) to `to` as
// version `version`: its config's "version" rewritten, weights as they are.
void CopyAsVersion(const std::string& from, const std::filesystem::path& to,
                   const std::string& version);

// The seed regressor's golden stream: 100 steps of sin(k*pi/10).
struct SineGolden {
  SineGolden();
  std::vector<float> inputs, outputs;
};

// `response` holds the golden outputs of steps [from, from + steps).
void ExpectSineOutputs(const v1::RegressResponse& response,
                       const SineGolden& golden, size_t from, size_t steps);

}  // namespace rnnserve::testing

#endif  // RNNSERVE_TESTS_TESTING_MODEL_COPIES_H_
