#include "tests/model/test_util.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace rnnserve::model::testing {

namespace fs = std::filesystem;

std::string SafetensorsBytes(std::string_view header, std::string_view data) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>(n & 0xff));
    n >>= 8;
  }
  out.append(header);
  out.append(data);
  return out;
}

std::string FloatBytes(const std::vector<float>& values) {
  std::string out(values.size() * sizeof(float), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

std::string BuildSafetensors(
    const std::vector<FakeTensor>& tensors,
    const std::vector<std::pair<std::string, std::string>>& metadata) {
  std::vector<std::string> entries;
  if (!metadata.empty()) {
    std::vector<std::string> pairs;
    for (const auto& [key, value] : metadata) {
      pairs.push_back(absl::StrCat("\"", key, "\":\"", value, "\""));
    }
    entries.push_back(
        absl::StrCat("\"__metadata__\":{", absl::StrJoin(pairs, ","), "}"));
  }
  std::string data;
  for (const FakeTensor& tensor : tensors) {
    const std::string bytes = tensor.bytes();
    entries.push_back(absl::StrCat(
        "\"", tensor.name, "\":{\"dtype\":\"", tensor.dtype, "\",\"shape\":[",
        absl::StrJoin(tensor.shape, ","), "],\"data_offsets\":[", data.size(),
        ",", data.size() + bytes.size(), "]}"));
    data += bytes;
  }
  std::string header = absl::StrCat("{", absl::StrJoin(entries, ","), "}");
  while ((8 + header.size()) % 8 != 0) header += ' ';
  return SafetensorsBytes(header, data);
}

std::vector<FakeTensor> ModelTensors(const ModelConfig& config) {
  int gates = 1;
  if (config.cell == Cell::kLstm) gates = 4;
  if (config.cell == Cell::kGru) gates = 3;
  const int64_t h = config.hidden_size;
  const int64_t d = config.bidirectional ? 2 : 1;
  int counter = 0;
  const auto make = [&](std::string name, std::vector<int64_t> shape) {
    FakeTensor t(std::move(name), std::move(shape), {});
    int64_t n = 1;
    for (int64_t dim : t.shape) n *= dim;
    for (int64_t i = 0; i < n; ++i) {
      t.values.push_back(static_cast<float>(counter++ % 197) / 64.0f - 1.5f);
    }
    return t;
  };
  std::vector<FakeTensor> tensors;
  for (int layer = 0; layer < config.num_layers; ++layer) {
    const int64_t width = layer == 0 ? config.input_size : d * h;
    for (int direction = 0; direction < d; ++direction) {
      const std::string suffix =
          absl::StrCat("_l", layer, direction == 1 ? "_reverse" : "");
      tensors.push_back(make("rnn.weight_ih" + suffix, {gates * h, width}));
      tensors.push_back(make("rnn.weight_hh" + suffix, {gates * h, h}));
      if (config.bias) {
        tensors.push_back(make("rnn.bias_ih" + suffix, {gates * h}));
        tensors.push_back(make("rnn.bias_hh" + suffix, {gates * h}));
      }
    }
  }
  tensors.push_back(make("out.weight", {config.output_size, d * h}));
  tensors.push_back(make("out.bias", {config.output_size}));
  return tensors;
}

FakeTensor& Named(std::vector<FakeTensor>& tensors, std::string_view name) {
  for (FakeTensor& tensor : tensors) {
    if (tensor.name == name) return tensor;
  }
  ADD_FAILURE() << "no tensor " << name;
  static FakeTensor* const kNone = new FakeTensor();
  return *kNone;
}

ConfigJson::ConfigJson()
    : entries_({{"format_version", "1"},
                {"version", "\"7\""},
                {"cell", "\"lstm\""},
                {"input_size", "3"},
                {"hidden_size", "2"},
                {"output_size", "2"},
                {"task", "\"classification\""}}) {}

ConfigJson& ConfigJson::Set(std::string_view key, std::string_view raw_json) {
  for (auto& [k, v] : entries_) {
    if (k == key) {
      v = std::string(raw_json);
      return *this;
    }
  }
  entries_.emplace_back(std::string(key), std::string(raw_json));
  return *this;
}

ConfigJson& ConfigJson::Erase(std::string_view key) {
  std::erase_if(entries_, [&](const auto& e) { return e.first == key; });
  return *this;
}

std::string ConfigJson::Build() const {
  std::vector<std::string> parts;
  for (const auto& [key, value] : entries_) {
    parts.push_back(absl::StrCat("  \"", key, "\": ", value));
  }
  return absl::StrCat("{\n", absl::StrJoin(parts, ",\n"), "\n}\n");
}

TempFolder::TempFolder() {
  static std::atomic<int> counter{0};
  const ::testing::TestInfo* test =
      ::testing::UnitTest::GetInstance()->current_test_info();
  path_ = fs::path(::testing::TempDir()) /
          absl::StrCat("rnnserve_", test ? test->name() : "test", "_", getpid(),
                       "_", counter++);
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempFolder::~TempFolder() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void WriteFile(const fs::path& path, std::string_view bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

void WriteModelFolder(const fs::path& dir, const std::string& config_json,
                      const std::string& weights) {
  WriteFile(dir / "config.json", config_json);
  WriteFile(dir / "model.safetensors", weights);
}

}  // namespace rnnserve::model::testing
