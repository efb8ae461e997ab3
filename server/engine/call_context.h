// What one thread reuses from call to call on one engine, so that steady
// traffic neither allocates nor creates library objects: a stream, host
// buffers, and the memory objects of the shapes it ran last. Making the
// memory objects, the stream and the argument map afresh on every call cost
// about 1.6 us, more than half of a one-step chunk's whole call. Private to
// the engine.
#ifndef RNNSERVE_SERVER_ENGINE_CALL_CONTEXT_H_
#define RNNSERVE_SERVER_ENGINE_CALL_CONTEXT_H_

#include <array>
#include <cstddef>
#include <utility>
#include <vector>

#include "dnnl.hpp"
#include "server/engine/recurrent_plan.h"
#include "server/engine/segment_plan.h"

namespace rnnserve::engine {

// Host buffers; they grow as calls need, and are trimmed after a huge one.
struct Workspace {
  std::vector<float> src;       // (steps, batch, input)
  std::vector<float> layer[2];  // Group outputs, (steps, batch, dirs * H)
  std::vector<float> state_in;  // (layers, dirs, batch, H)
  std::vector<float> cell_in;
  std::vector<float> state_out;
  std::vector<float> cell_out;
  std::vector<char> scratchpad;
  // Classified sequences' states between segments, one per item of a block.
  std::vector<float> carry;
  // Classified sequences' readout accumulators (sum and count for "mean",
  // running maximum for "max"), one per item of the call.
  std::vector<float> readout;
  // The head's input (a readout) and its scratch.
  std::vector<float> head;
  // The call's items: their step counts, their order by length, and the
  // segments of that order that run as one execution each.
  std::vector<int> steps;
  std::vector<int> order;
  std::vector<Segment> segments;
  std::vector<Segment> fitted;  // Scratch for fitting them to step buckets.
  SegmentScratch segment_scratch;
  // One segment's items, and the steps of input each has in it.
  std::vector<const float*> inputs;
  std::vector<const int64_t*> tokens;  // Embedding models, instead.
  std::vector<int> valid;
  std::vector<const float*> states_in;
  std::vector<float*> states_out;

  // Frees the large buffers when together they hold more than `max_bytes`.
  void TrimAbove(size_t max_bytes);
};

// One plan group's arguments as library memory objects, made once for the
// group's descriptors; a call points them at its buffers.
struct GroupArgs {
  dnnl::memory src_layer;
  dnnl::memory dst_layer;
  dnnl::memory state_in;
  dnnl::memory state_out;
  dnnl::memory cell_in;  // LSTM only.
  dnnl::memory cell_out;
  dnnl::memory scratchpad;
};

// Not thread-safe: one thread uses it at a time.
class CallContext {
 public:
  explicit CallContext(const dnnl::engine& engine)
      : engine_(engine), stream_(engine) {}

  dnnl::stream& stream() { return stream_; }
  Workspace& workspace() { return workspace_; }

  // The arguments of each group of `plan`: those made for its shape when it
  // is one of the last few shapes seen, otherwise made now. Throws
  // dnnl::error.
  std::vector<GroupArgs>& Bind(const Plan& plan, bool lstm);

 private:
  // Enough for batch sizes that wander among a few values, or a batch of
  // sequences of up to 32 different lengths. A miss costs what every call
  // cost before: making the memory objects.
  static constexpr size_t kShapes = 32;

  struct Entry {
    int steps = 0;  // 0: unused.
    int batch = 0;
    std::vector<GroupArgs> groups;
  };

  bool Matches(const Entry& entry, const Plan& plan) const;

  const dnnl::engine engine_;
  dnnl::stream stream_;
  Workspace workspace_;
  std::array<Entry, kShapes> shapes_;
  size_t last_ = 0;  // The entry used last; looked at first.
  size_t next_ = 0;  // The entry to replace next.
};

}  // namespace rnnserve::engine

#endif  // RNNSERVE_SERVER_ENGINE_CALL_CONTEXT_H_
