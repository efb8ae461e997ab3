#include "tests/testing/golden.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "server/model/safetensors.h"

namespace rnnserve::testing {

std::filesystem::path SourceDir() { return RNNSERVE_SOURCE_DIR; }
std::filesystem::path GoldensDir() { return SourceDir() / "tests" / "goldens"; }

const std::vector<float>& Golden::F32(const std::string& name) const {
  static const std::vector<float> kEmpty;
  auto it = f32.find(name);
  if (it == f32.end()) {
    ADD_FAILURE() << "golden has no F32 tensor " << name;
    return kEmpty;
  }
  return it->second;
}

const std::vector<int64_t>& Golden::I64(const std::string& name) const {
  static const std::vector<int64_t> kEmpty;
  auto it = i64.find(name);
  if (it == i64.end()) {
    ADD_FAILURE() << "golden has no I64 tensor " << name;
    return kEmpty;
  }
  return it->second;
}

Golden ReadGolden(const std::filesystem::path& path) {
  Golden golden;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot open " << path;
    return golden;
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  auto parsed = model::ParseSafetensors(bytes, path.string());
  if (!parsed.ok()) {
    ADD_FAILURE() << parsed.status();
    return golden;
  }
  for (const model::TensorView& t : parsed->tensors) {
    golden.shapes[t.name] = t.shape;
    if (t.dtype == model::DType::kF32) {
      std::vector<float>& v = golden.f32[t.name];
      v.resize(t.num_elements);
      std::memcpy(v.data(), t.data.data(), t.data.size());
    } else if (t.dtype == model::DType::kI64) {
      std::vector<int64_t>& v = golden.i64[t.name];
      v.resize(t.num_elements);
      std::memcpy(v.data(), t.data.data(), t.data.size());
    } else {
      ADD_FAILURE() << path << ": unexpected dtype of " << t.name;
    }
  }
  return golden;
}

std::vector<std::string> GoldenCases() {
  std::vector<std::string> cases;
  for (const auto& entry : std::filesystem::directory_iterator(GoldensDir())) {
    if (entry.is_directory()) cases.push_back(entry.path().filename());
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

}  // namespace rnnserve::testing
