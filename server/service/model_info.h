// A loaded model as the API describes it.
#ifndef RNNSERVE_SERVER_SERVICE_MODEL_INFO_H_
#define RNNSERVE_SERVER_SERVICE_MODEL_INFO_H_

#include "rnnserve/v1/inference.pb.h"
#include "server/runtime/model_runtime.h"
#include "server/service/limits.h"
#include "server/service/model_set.h"

namespace rnnserve::service {

// One version of a model, with its state.
void FillModelInfo(const VersionInfo& version, const Limits& limits,
                   v1::ModelInfo& info);

// A model: its newest ready version, and in `versions` every version whose
// configuration is known (loading, ready, draining, unloaded, and one whose
// reload failed). False when no version is ready: then only the name and
// `versions` are set.
bool FillModelInfo(const ModelSet& model, const Limits& limits,
                   v1::ModelInfo& info);

v1::VersionState ToProto(VersionState state);

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_MODEL_INFO_H_
