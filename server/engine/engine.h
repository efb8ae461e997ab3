// The inference engine: runs a batch of sequences through one model.
//
// This header is plain C++ so that the runtime and its tests can hold an
// Engine without seeing the library underneath; CreateDnnlEngine() in
// dnnl_engine.h makes the real one.
#ifndef RNNSERVE_SERVER_ENGINE_ENGINE_H_
#define RNNSERVE_SERVER_ENGINE_ENGINE_H_

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "server/model/model.h"

namespace rnnserve::engine {

// A sequence to classify, or a part of one. The engine reads `inputs` and
// writes the outputs; the caller owns all of them and keeps them alive for
// the call.
//
// A long sequence may be run in parts (a unidirectional model only): each
// part starts from the state the one before it wrote to `state_out`; all
// parts but the last have empty logits (no head is applied) and a
// state_out; the last has the logits. The result equals one pass.
struct ClassifyItem {
  int steps = 0;                   // >= 1
  std::span<const float> inputs;   // steps x input_size, row-major
  std::span<float> logits;         // output_size, or empty for a first part
  std::span<float> probabilities;  // output_size (softmax), or empty
  // classify_state_size(): the recurrent state, then a "mean" or "max"
  // readout's accumulator. Empty for zeros (and nothing accumulated).
  std::span<const float> state_in = {};
  std::span<float> state_out = {};  // The same size, or empty; may alias
                                    // state_in
  // An embedding model's input instead of `inputs` (then empty): one token
  // id per step, each in [0, num_embeddings).
  std::span<const int64_t> tokens = {};
};

// One chunk of a stream: `steps` inputs that continue from `state_in`.
struct RegressItem {
  int steps = 0;                    // >= 1
  std::span<const float> inputs;    // steps x input_size, row-major
  std::span<const float> state_in;  // state_size(), or empty for zeros
  std::span<float> state_out;       // state_size(); may alias state_in
  std::span<float> outputs;         // steps x output_size, row-major
  // An embedding model's input instead of `inputs`, as in ClassifyItem.
  std::span<const int64_t> tokens = {};
};

// Counters that show the caches at work; they only grow.
struct EngineStats {
  int64_t plans_created = 0;  // (steps, batch) shapes prepared
  int64_t primitives_created = 0;
  int64_t weight_reorders = 0;  // weights converted to a primitive's layout
  int64_t executions = 0;       // primitive executions
};

// Runs one model. Thread-safe: any number of threads may call Classify and
// Regress at once. A call's items may have different step counts; each item's
// result equals what it gives alone.
class Engine {
 public:
  virtual ~Engine() = default;

  // Logits (and probabilities) of each sequence from the head applied to the
  // model's readout of its recurrent output (by default the output at its
  // last step, as PyTorch's head(rnn(x)[0][:, -1, :])) for the sequence
  // alone, from a zero initial state.
  virtual absl::Status Classify(std::span<const ClassifyItem> items) = 0;

  // The head applied at every step of each chunk, starting from its
  // state_in; writes the state after its last step to state_out, so that a
  // sequence run chunk by chunk equals one pass. Unidirectional models only.
  virtual absl::Status Regress(std::span<const RegressItem> items) = 0;

  // Prepares, ahead of traffic, every shape that calls of up to `max_batch`
  // items need. A unidirectional model runs a bounded set of shapes: step
  // counts from a few buckets (1, 2, 4, ..., 64, and the remainder of
  // `steps` by 64, which this call adds) and batches padded up to a few
  // batch buckets; after warm-up no call of up to `max_batch` items, of any
  // lengths, makes a plan. A bidirectional model's runs take each item's
  // exact length: this prepares `steps` only, and other lengths are made on
  // first use (and kept in the plan cache).
  virtual absl::Status Warmup(int steps, int max_batch) = 0;

  virtual const model::ModelConfig& config() const = 0;
  virtual EngineStats stats() const = 0;
};

// Sets how many threads the library may use for work started from the
// calling thread. Call it on each compute thread before its first call into
// an engine; 1 suits small recurrent batches best.
void SetThreadsForThisThread(int threads);

}  // namespace rnnserve::engine

#endif  // RNNSERVE_SERVER_ENGINE_ENGINE_H_
