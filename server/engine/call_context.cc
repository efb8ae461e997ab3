#include "server/engine/call_context.h"

namespace rnnserve::engine {

void Workspace::TrimAbove(size_t max_bytes) {
  std::vector<float>* floats[] = {&src,     &layer[0],  &layer[1], &state_in,
                                  &cell_in, &state_out, &cell_out, &carry,
                                  &readout, &head};
  size_t bytes = scratchpad.capacity();
  for (const std::vector<float>* v : floats) {
    bytes += v->capacity() * sizeof(float);
  }
  if (bytes <= max_bytes) return;
  for (std::vector<float>* v : floats) std::vector<float>().swap(*v);
  std::vector<char>().swap(scratchpad);
}

bool CallContext::Matches(const Entry& entry, const Plan& plan) const {
  if (entry.steps != plan.steps || entry.batch != plan.batch ||
      entry.groups.size() != plan.groups.size()) {
    return false;
  }
  // The layer and state descriptors follow from the shape; the scratchpad's
  // may not (a plan remade on a thread with other settings), so compare it.
  for (size_t g = 0; g < plan.groups.size(); ++g) {
    if (entry.groups[g].scratchpad.get_desc() != plan.groups[g].scratchpad) {
      return false;
    }
  }
  return true;
}

std::vector<GroupArgs>& CallContext::Bind(const Plan& plan, bool lstm) {
  if (Matches(shapes_[last_], plan)) return shapes_[last_].groups;
  for (size_t i = 0; i < kShapes; ++i) {
    if (Matches(shapes_[i], plan)) {
      last_ = i;
      return shapes_[i].groups;
    }
  }
  Entry& entry = shapes_[next_];
  last_ = next_;
  next_ = (next_ + 1) % kShapes;
  entry.steps = 0;  // Unused until complete, should making throw.
  entry.groups.clear();
  for (const GroupPrimitive& p : plan.groups) {
    // Handles are set by each call before it runs.
    GroupArgs& a = entry.groups.emplace_back();
    a.src_layer = dnnl::memory(p.src_layer, engine_, nullptr);
    a.dst_layer = dnnl::memory(p.dst_layer, engine_, nullptr);
    a.state_in = dnnl::memory(p.state, engine_, nullptr);
    a.state_out = dnnl::memory(p.state, engine_, nullptr);
    if (lstm) {
      a.cell_in = dnnl::memory(p.state, engine_, nullptr);
      a.cell_out = dnnl::memory(p.state, engine_, nullptr);
    }
    a.scratchpad = dnnl::memory(p.scratchpad, engine_, nullptr);
  }
  entry.steps = plan.steps;
  entry.batch = plan.batch;
  return entry.groups;
}

}  // namespace rnnserve::engine
