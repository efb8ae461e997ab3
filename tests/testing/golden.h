// Reads the PyTorch goldens under tests/goldens (see its README.md).
#ifndef RNNSERVE_TESTS_TESTING_GOLDEN_H_
#define RNNSERVE_TESTS_TESTING_GOLDEN_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace rnnserve::testing {

// The repository's root, for data files.
std::filesystem::path SourceDir();
std::filesystem::path GoldensDir();

// The tensors of one golden file, copied out. F32 and I64 only.
struct Golden {
  std::map<std::string, std::vector<float>> f32;
  std::map<std::string, std::vector<int64_t>> i64;
  std::map<std::string, std::vector<int64_t>> shapes;

  bool has(const std::string& name) const { return shapes.count(name) > 0; }
  // The named tensor; fails the test (and returns empty) when absent.
  const std::vector<float>& F32(const std::string& name) const;
  const std::vector<int64_t>& I64(const std::string& name) const;
};

// Reads and parses `path`; fails the current test on any error.
Golden ReadGolden(const std::filesystem::path& path);

// The names of the per-case folders in tests/goldens, sorted.
std::vector<std::string> GoldenCases();

// Whether a case's model reads token ids (its name starts with "emb_"; its
// golden holds "tokens" instead of "inputs").
inline bool IsTokenCase(const std::string& name) {
  return name.rfind("emb_", 0) == 0;
}

}  // namespace rnnserve::testing

#endif  // RNNSERVE_TESTS_TESTING_GOLDEN_H_
