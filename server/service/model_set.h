// The loaded versions of one model. Today they are fixed at start-up; the
// set is the one place that holds them, so that loading and unloading
// versions while serving can be added here.
//
// Thread safety: filled by the Server before it serves, read-only after;
// any number of threads may read it then. Owns its runtimes, which live as
// long as the set.
#ifndef RNNSERVE_SERVER_SERVICE_MODEL_SET_H_
#define RNNSERVE_SERVER_SERVICE_MODEL_SET_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/runtime/model_runtime.h"

namespace rnnserve::service {

class ModelSet {
 public:
  // Adds a version, kept in version order: version numbers ascending, a
  // version that is no number (a flat model folder's) before them, equal
  // ones in the order added. A version added twice is a caller's error.
  void Add(std::unique_ptr<runtime::ModelRuntime> version);

  // The newest version, which answers requests that name none; null only
  // while the set is empty.
  runtime::ModelRuntime* newest() const {
    return versions_.empty() ? nullptr : versions_.back().get();
  }

  // The version called `version`, or null.
  runtime::ModelRuntime* Find(std::string_view version) const;

  // Every version, oldest first.
  const std::vector<std::unique_ptr<runtime::ModelRuntime>>& versions() const {
    return versions_;
  }

  // "1, 2": the versions for messages, oldest first.
  std::string VersionList() const;

 private:
  std::vector<std::unique_ptr<runtime::ModelRuntime>> versions_;
};

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_MODEL_SET_H_
