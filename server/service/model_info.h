// A loaded model as the API describes it.
#ifndef RNNSERVE_SERVER_SERVICE_MODEL_INFO_H_
#define RNNSERVE_SERVER_SERVICE_MODEL_INFO_H_

#include "rnnserve/v1/inference.pb.h"
#include "server/runtime/model_runtime.h"
#include "server/service/limits.h"
#include "server/service/model_set.h"

namespace rnnserve::service {

// One version of a model.
void FillModelInfo(const runtime::ModelRuntime& model, const Limits& limits,
                   v1::ModelInfo& info);

// A model: its newest version, and every version in `versions`.
void FillModelInfo(const ModelSet& model, const Limits& limits,
                   v1::ModelInfo& info);

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_MODEL_INFO_H_
