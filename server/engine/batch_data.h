// How a batch's data moves between the callers' items and the engine's
// time-major buffers: inputs in, recurrent states in and out, and the
// classification readouts (last output, final state, mean, max) taken from
// the outputs. Plain loops over floats, free of oneDNN, so that the engine
// file keeps to running primitives.
//
// Thread safety: functions of their arguments only; the buffers belong to
// the calling thread.
#ifndef RNNSERVE_SERVER_ENGINE_BATCH_DATA_H_
#define RNNSERVE_SERVER_ENGINE_BATCH_DATA_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "server/engine/engine.h"
#include "server/engine/layer_groups.h"
#include "server/model/config.h"

namespace rnnserve::engine {

// `v`'s data, grown to at least `n` floats.
float* Reserve(std::vector<float>& v, size_t n);

// The items of one segment, run as one batch from step `start` of each
// for `steps` steps; the vectors belong to the calling thread's workspace.
// An item with fewer steps left (valid[b] < steps) is zero-padded. Null
// states mean zeros in, nothing out.
struct Batch {
  int steps = 0;
  int start = 0;
  const std::vector<const float*>& inputs;  // At step `start` of each item.
  const std::vector<int>& valid;
  const std::vector<const float*>& state_in;
  const std::vector<float*>& state_out;
  // An embedding model's token ids at step `start` of each item, instead
  // of `inputs`; null for float models.
  const std::vector<const int64_t*>* tokens = nullptr;
  int size() const { return static_cast<int>(inputs.size()); }
};

// Copies `batch`'s inputs time-major into `src`: step t of sequence b at
// (t * n + b), padding zeros. With `batch.tokens`, step t's input is row
// tokens[b][t] of `embedding` (num_embeddings x input_size), ids checked by
// the caller. Returns its data.
const float* CopyInputs(const model::ModelConfig& config, const Batch& batch,
                        const std::vector<float>& embedding,
                        std::vector<float>& src);

// The hidden states (`cell`: the LSTM cell states) of `group`'s layers, for
// every item of `batch`, from the items' state layout into the layout a
// primitive reads, (layer, direction, item, hidden); zeros for an item
// without state_in.
void GatherState(const model::ModelConfig& config, const Batch& batch,
                 const LayerGroup& group, bool cell, float* dst);
// The other way, into each item's state_out that is not null.
void ScatterState(const model::ModelConfig& config, const Batch& batch,
                  const LayerGroup& group, bool cell, const float* src);

// Floats of a "mean" or "max" readout's accumulator: what a classified
// sequence carries beyond its recurrent state. 0 for the others.
size_t ReadoutCarry(const model::ModelConfig& config);

// Adds the `batch.valid[b]` outputs of item `b` of `out` (time-major,
// readout_size() floats a row) to its readout accumulator `acc`; starts it
// (from the item's carried one, if any) on the item's first segment.
void AccumulateReadout(const model::ModelConfig& config,
                       const ClassifyItem& item, const Batch& batch,
                       const float* out, int b, float* acc);

// The vector the head reads for item `b`, which ends in this segment; may
// point into `out`, `acc` or `buffer` (readout_size() floats).
const float* ReadoutOf(const model::ModelConfig& config,
                       const ClassifyItem& item, const Batch& batch,
                       const float* out, int b, const float* acc,
                       float* buffer);

}  // namespace rnnserve::engine

#endif  // RNNSERVE_SERVER_ENGINE_BATCH_DATA_H_
