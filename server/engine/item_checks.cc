#include "server/engine/item_checks.h"

#include <cstdint>
#include <span>

#include "absl/strings/str_cat.h"

namespace rnnserve::engine {
namespace {

absl::Status SizeError(const char* rpc, size_t item, const char* field,
                       size_t got, size_t want) {
  return absl::InvalidArgumentError(absl::StrCat(rpc, " item ", item, ": ",
                                                 field, " has ", got,
                                                 " floats, expected ", want));
}

// An item's step count, and its inputs' size (or for an embedding model
// its token ids' count and range) against it.
absl::Status CheckSteps(const model::ModelConfig& config, const char* rpc,
                        size_t item, int steps, size_t inputs,
                        std::span<const int64_t> tokens) {
  if (steps < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(rpc, " item ", item, ": steps must be >= 1, got ", steps));
  }
  if (config.has_embedding()) {
    if (inputs != 0) return SizeError(rpc, item, "inputs", inputs, 0);
    if (tokens.size() != static_cast<size_t>(steps)) {
      return absl::InvalidArgumentError(
          absl::StrCat(rpc, " item ", item, ": tokens has ", tokens.size(),
                       " ids, expected ", steps));
    }
    const int64_t vocabulary = config.embedding.num_embeddings;
    for (size_t t = 0; t < tokens.size(); ++t) {
      if (tokens[t] < 0 || tokens[t] >= vocabulary) {
        return absl::InvalidArgumentError(
            absl::StrCat(rpc, " item ", item, ": tokens[", t, "] ", tokens[t],
                         " is outside the vocabulary [0, ", vocabulary, ")"));
      }
    }
    return absl::OkStatus();
  }
  if (!tokens.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(rpc, " item ", item, ": model ", config.name,
                     " reads float inputs, not token ids"));
  }
  const size_t want = static_cast<size_t>(steps) * config.input_size;
  if (inputs != want) return SizeError(rpc, item, "inputs", inputs, want);
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckItem(const model::ModelConfig& config, size_t i,
                       const ClassifyItem& item) {
  if (absl::Status steps = CheckSteps(config, "Classify", i, item.steps,
                                      item.inputs.size(), item.tokens);
      !steps.ok()) {
    return steps;
  }
  const size_t outputs = config.output_size;
  const size_t state = config.classify_state_size();
  if (!item.state_in.empty() && item.state_in.size() != state) {
    return SizeError("Classify", i, "state_in", item.state_in.size(), state);
  }
  if (!item.state_out.empty() && item.state_out.size() != state) {
    return SizeError("Classify", i, "state_out", item.state_out.size(), state);
  }
  // A part before the last computes no logits.
  const bool unfinished = item.logits.empty() && !item.state_out.empty();
  if (!unfinished && item.logits.size() != outputs) {
    return SizeError("Classify", i, "logits", item.logits.size(), outputs);
  }
  if (!item.probabilities.empty() && item.probabilities.size() != outputs) {
    return SizeError("Classify", i, "probabilities", item.probabilities.size(),
                     outputs);
  }
  return absl::OkStatus();
}

absl::Status CheckItem(const model::ModelConfig& config, size_t i,
                       const RegressItem& item) {
  if (absl::Status steps = CheckSteps(config, "Regress", i, item.steps,
                                      item.inputs.size(), item.tokens);
      !steps.ok()) {
    return steps;
  }
  const size_t state = config.state_size();
  if (!item.state_in.empty() && item.state_in.size() != state) {
    return SizeError("Regress", i, "state_in", item.state_in.size(), state);
  }
  if (item.state_out.size() != state) {
    return SizeError("Regress", i, "state_out", item.state_out.size(), state);
  }
  const size_t want_out =
      static_cast<size_t>(item.steps) * static_cast<size_t>(config.output_size);
  if (item.outputs.size() != want_out) {
    return SizeError("Regress", i, "outputs", item.outputs.size(), want_out);
  }
  return absl::OkStatus();
}

}  // namespace rnnserve::engine
