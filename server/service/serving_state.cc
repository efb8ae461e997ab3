#include "server/service/serving_state.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace rnnserve::service {

absl::StatusOr<runtime::ModelRuntime*> ServingState::FindModel(
    const std::string& name) const {
  if (name.empty()) {
    return absl::InvalidArgumentError("model: a model name is required");
  }
  auto it = models.find(name);
  if (it == models.end()) {
    std::vector<std::string> names;
    for (const auto& [n, runtime] : models) names.push_back(n);
    // The name is the caller's own input; quote only a bounded part of it.
    return absl::NotFoundError(
        absl::StrCat("model: no model named \"", name.substr(0, 128),
                     "\"; loaded models: ", absl::StrJoin(names, ", ")));
  }
  return it->second.get();
}

absl::StatusOr<CallSlot> ServingState::AdmitCall(
    const std::string& caller) const {
  if (calls == nullptr) return CallSlot();
  return calls->Admit(caller);
}

metrics::ModelMetrics* ServingState::MetricsFor(const std::string& name) const {
  return metrics == nullptr ? nullptr : metrics->ForModel(name);
}

}  // namespace rnnserve::service
