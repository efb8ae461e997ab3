// Plans: the primitives that run one model at one (steps, batch) shape, each
// with its weights in the layout it prefers. Private to the engine.
#ifndef RNNSERVE_SERVER_ENGINE_RECURRENT_PLAN_H_
#define RNNSERVE_SERVER_ENGINE_RECURRENT_PLAN_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "dnnl.hpp"
#include "server/engine/layer_groups.h"
#include "server/model/model.h"

namespace rnnserve::engine {

// One layer group's primitive. Its arguments are plain: tnc for layer data,
// ldnc for states.
struct GroupPrimitive {
  dnnl::primitive primitive;
  dnnl::memory::desc src_layer;
  dnnl::memory::desc dst_layer;
  dnnl::memory::desc state;  // src/dst iter (and iter_c for LSTM)
  dnnl::memory::desc scratchpad;
  dnnl::memory weights_layer;  // In the primitive's layout; shared, read-only.
  dnnl::memory weights_iter;
  dnnl::memory bias;
};

// Everything to run `batch` sequences of `steps` steps. Immutable once made;
// the primitives use a caller-provided scratchpad, so a plan may run on
// several threads at once.
struct Plan {
  int steps = 0;
  int batch = 0;
  std::vector<GroupPrimitive> groups;
  size_t scratchpad_bytes = 0;  // The largest group's.
};

// Makes plans for one model. Keeps the model's weights in the library's
// plain layouts, and a copy in each layout a primitive has asked for, so
// weights are reordered once per layout, not once per plan. Thread-safe.
class PlanBuilder {
 public:
  // `model` must be valid.
  PlanBuilder(const dnnl::engine& engine, const model::Model& model);

  // Throws dnnl::error when the library refuses the shape.
  std::shared_ptr<const Plan> Build(int steps, int batch);

  int64_t primitives_created() const { return primitives_created_; }
  int64_t weight_reorders() const { return weight_reorders_; }

 private:
  struct GroupSource {
    LayerGroup group;
    GroupWeights host;           // Owns the floats the memories below point to.
    dnnl::memory weights_layer;  // ldgoi
    dnnl::memory weights_iter;   // ldgoi
    dnnl::memory bias;           // ldgo
  };

  GroupPrimitive BuildGroup(const GroupSource& source, int steps, int batch);
  // `source` in layout `want`, reordering it the first time `want` is seen.
  dnnl::memory InLayout(const dnnl::memory& source,
                        const dnnl::memory::desc& want);

  const dnnl::engine engine_;
  const model::ModelConfig config_;
  std::vector<GroupSource> sources_;

  absl::Mutex mu_;
  // (source handle, layout) -> reordered copy; a handful of entries.
  std::vector<
      std::pair<std::pair<const void*, dnnl::memory::desc>, dnnl::memory>>
      reordered_ ABSL_GUARDED_BY(mu_);

  std::atomic<int64_t> primitives_created_{0};
  std::atomic<int64_t> weight_reorders_{0};
};

}  // namespace rnnserve::engine

#endif  // RNNSERVE_SERVER_ENGINE_RECURRENT_PLAN_H_
