#include "client/bench_mode.h"

#include <array>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/common/string_view.h"

namespace rnnserve::client {
namespace {

struct ModeInfo {
  BenchMode mode;
  std::string_view name;
  std::string_view default_model;
};

constexpr std::array<ModeInfo, 3> kModes = {{
    {BenchMode::kClassify, "classify", "fashion_lstm"},
    {BenchMode::kStream, "stream", "sine_rnn"},
    {BenchMode::kHealth, "health", ""},
}};

const ModeInfo& Info(BenchMode mode) {
  for (const ModeInfo& info : kModes) {
    if (info.mode == mode) return info;
  }
  return kModes[0];  // Unreachable: every enumerator is in the table.
}

}  // namespace

absl::StatusOr<BenchMode> ParseBenchMode(std::string_view name) {
  for (const ModeInfo& info : kModes) {
    if (info.name == name) return info.mode;
  }
  std::string accepted;
  for (size_t i = 0; i < kModes.size(); ++i) {
    absl::StrAppend(&accepted,
                    i == 0                   ? ""
                    : i + 1 == kModes.size() ? " or "
                                             : ", ",
                    AbslView(kModes[i].name));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--mode: expected ", accepted, ", got \"", AbslView(name), "\""));
}

std::string_view BenchModeName(BenchMode mode) { return Info(mode).name; }

std::string_view BenchDefaultModel(BenchMode mode) {
  return Info(mode).default_model;
}

}  // namespace rnnserve::client
