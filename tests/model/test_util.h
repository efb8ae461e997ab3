// Builders for the model tests: safetensors bytes made by hand, config.json
// text, and throwaway folders. Written apart from the code under test (no
// call into server/model), so that a bug there cannot hide itself here.
#ifndef RNNSERVE_TESTS_MODEL_TEST_UTIL_H_
#define RNNSERVE_TESTS_MODEL_TEST_UTIL_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/model/model.h"

namespace rnnserve::model::testing {

// The 8-byte little-endian length of `header`, `header`, then `data`.
std::string SafetensorsBytes(std::string_view header, std::string_view data);

// The raw little-endian bytes of `values`.
std::string FloatBytes(const std::vector<float>& values);

struct FakeTensor {
  FakeTensor() = default;
  FakeTensor(std::string name, std::vector<int64_t> shape,
             std::vector<float> values)
      : name(std::move(name)),
        shape(std::move(shape)),
        values(std::move(values)) {}
  // A tensor of any dtype, its bytes given as they are.
  static FakeTensor Raw(std::string name, std::string dtype,
                        std::vector<int64_t> shape, std::string bytes) {
    FakeTensor t(std::move(name), std::move(shape), {});
    t.dtype = std::move(dtype);
    t.raw = std::move(bytes);
    return t;
  }

  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;  // Written as F32 unless `raw` is set.
  std::string dtype = "F32";
  std::optional<std::string> raw;  // Bytes written instead of `values`.

  std::string bytes() const { return raw ? *raw : FloatBytes(values); }
};

// A well-formed file: the tensors packed in order from offset 0, the header
// padded with spaces so the data starts on an 8-byte boundary, as the
// exporter writes it.
std::string BuildSafetensors(
    const std::vector<FakeTensor>& tensors,
    const std::vector<std::pair<std::string, std::string>>& metadata = {});

// Every tensor a valid model of `config` holds, in state_dict order, each
// with distinct finite values.
std::vector<FakeTensor> ModelTensors(const ModelConfig& config);

// The FakeTensor named `name` in `tensors`; fails the test if absent.
FakeTensor& Named(std::vector<FakeTensor>& tensors, std::string_view name);

// config.json text, keys in insertion order, each value raw JSON. Starts as
// a valid small LSTM classifier (input 3, hidden 2, output 2).
class ConfigJson {
 public:
  ConfigJson();
  ConfigJson& Set(std::string_view key, std::string_view raw_json);
  ConfigJson& Erase(std::string_view key);
  std::string Build() const;

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

// A fresh empty folder under the test's temporary directory, removed with
// everything in it on destruction.
class TempFolder {
 public:
  TempFolder();
  ~TempFolder();
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Writes `bytes` to `path`, creating parent folders; fails the test on error.
void WriteFile(const std::filesystem::path& path, std::string_view bytes);

// Writes a model folder `dir` with config.json and model.safetensors.
void WriteModelFolder(const std::filesystem::path& dir,
                      const std::string& config_json,
                      const std::string& weights);

}  // namespace rnnserve::model::testing

#endif  // RNNSERVE_TESTS_MODEL_TEST_UTIL_H_
