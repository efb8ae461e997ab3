// What `rnnctl stream` sends instead of its sine demo: the token ids of
// --tokens or of --text (with the model's tokenizer) or the values of a
// --csv file, checked against the model, and one session that streams them
// chunk by chunk (StreamSequence).
//
// Plain values and functions; StreamSequence blocks, like RegressSession.
#ifndef RNNSERVE_CLIENT_STREAM_INPUTS_H_
#define RNNSERVE_CLIENT_STREAM_INPUTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/connection.h"
#include "client/regress_session.h"
#include "rnnserve/v1/inference.pb.h"

namespace rnnserve::client {

// The steps of one stream: token ids (one per step) or values (`width` per
// step, row-major).
struct StreamInputs {
  int64_t steps = 0;
  int64_t width = 0;  // Values per step; 0 for token ids.
  std::vector<float> values;
  std::vector<int64_t> token_ids;
  // --text: each step's character as the text gives it (before any
  // lower-casing); empty otherwise.
  std::vector<std::string> characters;
  // The flag the steps come from: "--tokens", "--text" or "--csv".
  std::string flag;

  // Sets `request`'s steps to n and appends the inputs of steps
  // [from, from + n).
  void AddTo(int64_t from, int64_t n, v1::RegressRequest* request) const;
  // Step i's input for a report: the token id (and its character, quoted,
  // for --text; a control character as U+XXXX), or the values
  // comma-separated (the first few, then "...").
  std::string Describe(int64_t i) const;
};

// --tokens "1,2,3": one id per step, each in [0, vocabulary_size), for a
// model that reads token ids. The message names the position of a bad id.
absl::StatusOr<StreamInputs> ParseStreamTokens(const std::string& tokens,
                                               const v1::ModelInfo& model);

// --text "...": one step per character, encoded with the model's tokenizer
// (text_tokens.h); refused, naming --text, for a model without one.
absl::StatusOr<StreamInputs> ParseStreamText(const std::string& text,
                                             const v1::ModelInfo& model);

// --csv FILE: values for a model that reads them, input_size per step;
// every line holds whole steps (one step per line, or a whole sequence per
// line), and the lines follow each other in the stream.
absl::StatusOr<StreamInputs> LoadStreamCsv(const std::string& path,
                                           const v1::ModelInfo& model);

// The flags that give the steps to stream instead of the sine demo.
struct StreamInputFlags {
  std::string tokens;
  std::string text;
  std::string csv;

  // The flag given, e.g. "--csv"; nullptr when none is.
  const char* Given() const;
  // InvalidArgument when more than one is given.
  absl::Status CheckOne() const;
};

// The steps of the one flag given (see Given(), which must not be null).
absl::StatusOr<StreamInputs> LoadStreamInputs(const StreamInputFlags& flags,
                                              const v1::ModelInfo& model);

// OK when `top_k` is 0 or the model has an output activation (sigmoid or
// softmax); otherwise InvalidArgument naming --top-k.
absl::Status CheckTopK(int64_t top_k, const v1::ModelInfo& model);

// One step's best classes: "yes 0.412300  sil 0.221000" (the label, or the
// class index when the model has no labels, then the probability).
std::string FormatStepTop(const v1::StepTop& top);

struct SequenceOptions {
  std::string model;
  std::string model_version;
  RegressSession::Transport transport = RegressSession::Transport::kStream;
  int retries = RetryPolicy().max_retries;
  int64_t chunk = 10;        // Steps per request.
  uint32_t top_k = 0;        // RegressRequest.top_k.
  std::string resume;        // A session token to continue, or empty.
  bool end_session = false;  // End the session with the last chunk.
};

// One step's answer.
struct SequenceStep {
  uint64_t step = 0;           // The server's index of the step in the session.
  int64_t input = 0;           // Index of the step in the StreamInputs.
  std::vector<float> outputs;  // output_size values.
  v1::StepTop top;             // With top_k > 0.
};

struct SequenceRun {
  std::vector<SequenceStep> steps;
  int chunks = 0;
  SessionTally tally;
  std::string version;
  bool ended = false;
  uint64_t next_step = 0;  // The session's position after the run.
};

// Sends every step of `inputs` through one session of `model` (its
// description), o.chunk steps per request.
absl::StatusOr<SequenceRun> StreamSequence(const Connection& connection,
                                           const SequenceOptions& o,
                                           const v1::ModelInfo& model,
                                           const StreamInputs& inputs);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_STREAM_INPUTS_H_
