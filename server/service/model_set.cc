#include "server/service/model_set.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/str_join.h"
#include "server/model/versions.h"

namespace rnnserve::service {
namespace {

// The order of versions: no number (-1) first, then by number.
int64_t OrderKey(const runtime::ModelRuntime& runtime) {
  return model::VersionNumber(runtime.config().version).value_or(-1);
}

}  // namespace

void ModelSet::Add(std::unique_ptr<runtime::ModelRuntime> version) {
  const int64_t key = OrderKey(*version);
  auto at = std::upper_bound(
      versions_.begin(), versions_.end(), key,
      [](int64_t k, const std::unique_ptr<runtime::ModelRuntime>& v) {
        return k < OrderKey(*v);
      });
  versions_.insert(at, std::move(version));
}

runtime::ModelRuntime* ModelSet::Find(std::string_view version) const {
  for (const auto& v : versions_) {
    if (v->config().version == version) return v.get();
  }
  return nullptr;
}

std::string ModelSet::VersionList() const {
  return absl::StrJoin(versions_, ", ", [](std::string* out, const auto& v) {
    out->append(v->config().version);
  });
}

}  // namespace rnnserve::service
