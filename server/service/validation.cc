#include "server/service/validation.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "server/common/utf8.h"

namespace rnnserve::service {
namespace {

// "sequences[3].steps", or "steps" for a request's own field.
std::string Field(const std::string& prefix, const char* name) {
  return prefix.empty() ? std::string(name) : absl::StrCat(prefix, ".", name);
}

// The index of the first value that is NaN or infinite, or -1. Every call
// scans all its input, so the common case (all finite) is kept free of
// branches per value: the compiler vectorizes the test of a block, and only
// a block with a bad value is searched for it.
int FirstNonFinite(const float* values, int n) {
  constexpr int kBlock = 64;
  constexpr uint32_t kExponent = 0x7f800000u;  // all ones: NaN or infinity
  for (int start = 0; start < n; start += kBlock) {
    const int end = std::min(n, start + kBlock);
    uint32_t bad = 0;
    for (int i = start; i < end; ++i) {
      bad |= static_cast<uint32_t>(
          (std::bit_cast<uint32_t>(values[i]) & kExponent) == kExponent);
    }
    if (bad == 0) continue;
    for (int i = start; i < end; ++i) {
      if (!std::isfinite(values[i])) return i;
    }
  }
  return -1;
}

// ValidateSteps, with the prefix of the fields' names made by `prefix()`
// only when there is an error to name them in.
// An embedding model's input: no values, one token id per step, each in
// the vocabulary.
template <typename Prefix>
absl::Status CheckTokens(const Prefix& prefix, uint32_t steps,
                         const google::protobuf::RepeatedField<float>& values,
                         const google::protobuf::RepeatedField<int64_t>& tokens,
                         const model::ModelConfig& config) {
  if (!values.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        Field(prefix(), "values"), ": model \"", config.name,
        "\" reads token ids: give token_ids (one per step) and no values"));
  }
  if (static_cast<uint64_t>(tokens.size()) != steps) {
    return absl::InvalidArgumentError(
        absl::StrCat(Field(prefix(), "token_ids"), ": expected ", steps,
                     " token ids (one per step), got ", tokens.size()));
  }
  const int64_t vocabulary = config.embedding.num_embeddings;
  for (int t = 0; t < tokens.size(); ++t) {
    if (tokens[t] < 0 || tokens[t] >= vocabulary) {
      return absl::InvalidArgumentError(
          absl::StrCat(Field(prefix(), "token_ids"), "[", t, "]: ", tokens[t],
                       " is outside the vocabulary [0, ", vocabulary, ")"));
    }
  }
  return absl::OkStatus();
}

template <typename Prefix>
absl::Status CheckSteps(const Prefix& prefix, uint32_t steps,
                        const google::protobuf::RepeatedField<float>& values,
                        const google::protobuf::RepeatedField<int64_t>* tokens,
                        const model::ModelConfig& config, const Limits& limits,
                        bool allow_empty) {
  if (steps == 0 && !allow_empty) {
    return absl::InvalidArgumentError(
        absl::StrCat(Field(prefix(), "steps"), ": must be at least 1, got 0"));
  }
  if (steps > static_cast<uint32_t>(limits.max_steps)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Field(prefix(), "steps"), ": ", steps, " steps, at most ",
                     limits.max_steps, " are allowed"));
  }
  if (config.has_embedding()) {
    if (tokens == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model \"", config.name,
          "\" reads token ids, which this API does not carry; use Classify, "
          "Regress or RegressChunk with token_ids"));
    }
    return CheckTokens(prefix, steps, values, *tokens, config);
  }
  if (tokens != nullptr && !tokens->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        Field(prefix(), "token_ids"), ": model \"", config.name,
        "\" reads values (", config.input_size, " per step), not token ids"));
  }
  const uint64_t want = static_cast<uint64_t>(steps) * config.input_size;
  if (static_cast<uint64_t>(values.size()) != want) {
    return absl::InvalidArgumentError(absl::StrCat(
        Field(prefix(), "values"), ": expected ", want, " values (", steps,
        " steps x ", config.input_size, " inputs), got ", values.size()));
  }
  if (const int i = FirstNonFinite(values.data(), values.size()); i >= 0) {
    return absl::InvalidArgumentError(absl::StrCat(Field(prefix(), "values"),
                                                   "[", i, "]: ", values[i],
                                                   " is not a finite number"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckUtf8(const char* field, std::string_view value) {
  size_t i = 0;
  while (i < value.size()) {
    if (static_cast<unsigned char>(value[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(value.substr(i));
    if (n == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": not valid UTF-8"));
    }
    i += n;
  }
  return absl::OkStatus();
}

absl::Status CheckTask(const model::ModelConfig& config, model::Task task) {
  if (config.task == task) return absl::OkStatus();
  return absl::FailedPreconditionError(
      config.task == model::Task::kClassification
          ? absl::StrCat("model: \"", config.name,
                         "\" is a classification model; call Classify")
          : absl::StrCat("model: \"", config.name,
                         "\" is a regression model; call Regress or "
                         "RegressChunk"));
}

absl::Status ValidateSteps(const std::string& prefix, uint32_t steps,
                           const google::protobuf::RepeatedField<float>& values,
                           const model::ModelConfig& config,
                           const Limits& limits, bool allow_empty) {
  return CheckSteps([&prefix] { return prefix; }, steps, values, nullptr,
                    config, limits, allow_empty);
}

absl::Status ValidateClassify(const v1::ClassifyRequest& request,
                              const model::ModelConfig& config,
                              const Limits& limits) {
  const int n = request.sequences_size();
  if (n == 0) {
    return absl::InvalidArgumentError(
        "sequences: at least one sequence is required");
  }
  if (n > limits.max_sequences_per_request) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sequences: ", n, " sequences, at most ",
        limits.max_sequences_per_request, " are allowed per request"));
  }
  for (int i = 0; i < n; ++i) {
    const v1::Sequence& s = request.sequences(i);
    // The prefix is built only for an error message: not per call.
    if (absl::Status st =
            CheckSteps([i] { return absl::StrCat("sequences[", i, "]"); },
                       s.steps(), s.values(), &s.token_ids(), config, limits,
                       /*allow_empty=*/false);
        !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateChunk(const v1::RegressRequest& request,
                           const model::ModelConfig& config,
                           const Limits& limits) {
  if (request.top_k() > 0 &&
      config.output_activation == model::OutputActivation::kNone) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k: model \"", config.name,
                     "\" has no output activation (its outputs are not class "
                     "probabilities); send top_k 0"));
  }
  // The chunk's fields are the request's own: no prefix. Zero steps are a
  // control request: a reset, an end, or a read of the position.
  return CheckSteps([] { return std::string(); }, request.steps(),
                    request.values(), &request.token_ids(), config, limits,
                    /*allow_empty=*/true);
}

}  // namespace rnnserve::service
