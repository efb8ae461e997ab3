// rnnctl stream: the streaming regression demo. Sends x_k = sin(k dt) chunk
// by chunk to a regression model (the seed model learnt to answer cos(k dt))
// and compares each prediction with cos(k dt). Shows that the recurrent state
// survives across chunks, streams (--reconnect-every) and client runs
// (--resume). With --tokens, --text or --csv it streams those steps instead
// and prints each step's outputs, or its best classes with --top-k
// (stream_inputs.h, stream_report.h).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/commands.h"
#include "client/common_flags.h"
#include "client/connection.h"
#include "client/model_info.h"
#include "client/regress_session.h"
#include "client/retry_policy.h"
#include "client/stream_inputs.h"
#include "client/stream_report.h"
#include "client/svg_plot.h"
#include "server/common/status_macros.h"

namespace rnnserve::client {
namespace {

struct StreamOptions {
  CommonOptions common;
  std::string model = "sine_rnn";
  std::string model_version;
  int64_t steps = 200;
  int64_t chunk = 10;
  double dt = M_PI / 10;
  std::string resume;
  int64_t start = 0;
  int64_t reconnect_every = 0;
  bool end = false;
  bool unary = false;
  bool quiet = false;
  bool print_token = false;
  std::string plot;
  int64_t retries = RetryPolicy().max_retries;
  int64_t top_k = 0;
  StreamInputFlags inputs;  // --tokens, --text, --csv.
};

StreamReportOptions Report(const StreamOptions& o) {
  return {.model = o.model,
          .chunk = o.chunk,
          .unary = o.unary,
          .reconnect_every = o.reconnect_every,
          .print_token = o.print_token,
          .quiet = o.quiet,
          .top_k = o.top_k};
}

struct StepRecord {
  uint64_t step = 0;  // The server's index of the step in the session.
  double t = 0;       // The input was sin(t); the target is cos(t).
  double predicted = 0;
  std::string top;  // The step's best classes, with --top-k.
};

struct DemoRun {
  std::vector<StepRecord> steps;
  std::vector<size_t> reopened_before;  // Indices into steps.
  SessionTally tally;
  std::string version;
  bool ended = false;
  uint64_t next_step = 0;  // The session's position after the run.
};

// Runs o.steps steps in chunks through one session. `resume` continues a
// session; `reconnect_every` > 0 closes the stream after that many chunks.
absl::StatusOr<DemoRun> RunDemo(const Connection& connection,
                                const StreamOptions& o,
                                const v1::ModelInfo& model,
                                const std::string& resume, bool end_session,
                                int64_t reconnect_every, bool announce) {
  RegressSession::Options options;
  options.transport = o.unary ? RegressSession::Transport::kUnary
                              : RegressSession::Transport::kStream;
  options.retry.max_retries = static_cast<int>(o.retries);
  options.model_version = o.model_version;
  RegressSession session(connection, o.model, resume, std::move(options));
  DemoRun run;
  // k of the next input to send: x_k = sin(k dt). A resumed session goes on
  // from where the server says it stands.
  int64_t k_next = 0;
  if (!resume.empty()) {
    ASSIGN_OR_RETURN(const uint64_t position, session.ReadPosition());
    k_next = static_cast<int64_t>(position);
    if (k_next != o.start) {
      std::fprintf(stderr,
                   "rnnctl: warning: the session is at step %lld, not at "
                   "--start %lld; the chunks continue from step %lld\n",
                   static_cast<long long>(k_next),
                   static_cast<long long>(o.start),
                   static_cast<long long>(k_next));
    }
  }
  int64_t sent = 0;
  for (int64_t chunk_index = 1; sent < o.steps; ++chunk_index) {
    const int64_t n = std::min(o.chunk, o.steps - sent);
    const bool last = sent + n == o.steps;
    const int64_t k0 = k_next;
    v1::RegressRequest request;
    request.set_steps(static_cast<uint32_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      request.add_values(static_cast<float>(std::sin((k0 + j) * o.dt)));
    }
    request.set_end_session(end_session && last);
    request.set_top_k(static_cast<uint32_t>(o.top_k));
    ASSIGN_OR_RETURN(v1::RegressResponse response,
                     session.Send(std::move(request)));
    const int64_t width = model.output_size();
    if (response.outputs_size() != n * width) {
      return absl::InternalError(
          absl::StrCat("the server answered ", response.outputs_size(),
                       " outputs for ", n, " steps of output_size ", width));
    }
    k_next = k0 + n;
    if (chunk_index == 1 && announce) {
      std::fprintf(stderr, "session %s (%s)\n",
                   ShortToken(session.token(), o.print_token).c_str(),
                   resume.empty() ? "new" : "resumed");
    }
    for (int64_t j = 0; j < n; ++j) {
      run.steps.push_back({response.first_step() + j, (k0 + j) * o.dt,
                           response.outputs(j * width),
                           j < response.step_top_size()
                               ? FormatStepTop(response.step_top(j))
                               : ""});
    }
    run.version = response.model_version();
    run.ended = response.session_ended();
    run.next_step = response.first_step() + n;
    sent += n;
    if (reconnect_every > 0 && !o.unary && chunk_index % reconnect_every == 0 &&
        !last) {
      RETURN_IF_ERROR(session.CloseStream());
      run.reopened_before.push_back(run.steps.size());
    }
  }
  RETURN_IF_ERROR(session.CloseStream());
  run.tally = session.Tally();
  return run;
}

absl::Status WritePlot(const std::string& path, const StreamOptions& o,
                       const DemoRun& run) {
  PlotSeries predicted{"predicted", "#1f77b4", false, {}, {}};
  PlotSeries truth{"true cos(t)", "#d62728", true, {}, {}};
  for (const StepRecord& s : run.steps) {
    predicted.x.push_back(s.t);
    predicted.y.push_back(s.predicted);
    truth.x.push_back(s.t);
    truth.y.push_back(std::cos(s.t));
  }
  // Designated initializers: assigning the short literals triggers GCC 12's
  // false -Wrestrict warning (GCC bug 105329).
  const PlotOptions options{
      .title = absl::StrCat("rnnserve: ", o.model, " fed sin(t), ",
                            run.steps.size(), " steps in chunks of ", o.chunk),
      .x_label = "t",
      .y_label = "output"};
  std::ofstream out(path);
  out << RenderSvgPlot(options, {predicted, truth});
  out.close();
  if (!out) {
    return absl::PermissionDeniedError(
        absl::StrCat("--plot: cannot write \"", path, "\""));
  }
  return absl::OkStatus();
}

// How far a resumed prediction may be from its uninterrupted twin. On a busy
// server a chunk shares its engine batch with other sessions' chunks, and
// the batch's size moves the last bits of the float math (seen: 2.4e-7 on
// sine_rnn); a lost or doubled chunk moves the predictions by far more.
constexpr double kResumeTolerance = 1e-5;

// Prints every step (unless --quiet) and the summary. `reference` holds the
// predictions of an uninterrupted stream, or is empty.
absl::Status PrintStreamReport(const StreamOptions& o, const DemoRun& run,
                               const std::vector<double>& reference) {
  const bool compare = !reference.empty();
  if (!o.quiet) {
    std::printf("%6s %10s %10s %10s %10s%s%s\n", "step", "t", "sin(t)",
                "predicted", "cos(t)", compare ? "  uninterrupted" : "",
                o.top_k > 0 ? "  top" : "");
  }
  size_t reopen = 0;
  double squared_error = 0;
  int64_t equal = 0;
  double max_diff = 0;
  for (size_t i = 0; i < run.steps.size(); ++i) {
    const StepRecord& s = run.steps[i];
    const double error = s.predicted - std::cos(s.t);
    squared_error += error * error;
    const bool same =
        compare && i < reference.size() && reference[i] == s.predicted;
    equal += same;
    if (compare && i < reference.size()) {
      max_diff = std::max(max_diff, std::abs(reference[i] - s.predicted));
    }
    if (o.quiet) continue;
    if (reopen < run.reopened_before.size() &&
        run.reopened_before[reopen] == i) {
      std::printf("# stream closed; the session resumes on a new stream\n");
      ++reopen;
    }
    std::string row =
        absl::StrFormat("%6d %10.4f %10.6f %10.6f %10.6f", s.step, s.t,
                        std::sin(s.t), s.predicted, std::cos(s.t));
    if (compare) {
      const double twin = i < reference.size() ? reference[i] : NAN;
      row += same ? "  same"
             : std::abs(twin - s.predicted) <= kResumeTolerance
                 ? absl::StrFormat("  close: %.9g", twin)
                 : absl::StrFormat("  differs: %.9g", twin);
    }
    if (!s.top.empty()) absl::StrAppend(&row, "  ", s.top);
    std::printf("%s\n", row.c_str());
  }

  std::printf("model        %s (version %s)\n", o.model.c_str(),
              run.version.c_str());
  PrintCalls(Report(o), run.steps.size(), run.tally);
  std::printf("mse          %.6g (predicted vs cos(t), over %zu steps)\n",
              run.steps.empty() ? 0.0 : squared_error / run.steps.size(),
              run.steps.size());
  const bool all_equal = equal == static_cast<int64_t>(run.steps.size());
  const bool reproduced =
      reference.size() == run.steps.size() && max_diff <= kResumeTolerance;
  if (compare) {
    std::printf(
        "resumed      %s to one uninterrupted stream: %lld of %zu "
        "predictions bit-for-bit equal (max |diff| %.3g%s)\n",
        all_equal    ? "IDENTICAL"
        : reproduced ? "EQUAL within 1e-5"
                     : "DIFFERENT",
        static_cast<long long>(equal), run.steps.size(), max_diff,
        all_equal || !reproduced
            ? ""
            : "; other sessions' chunks in the same engine batches move the "
              "last bits");
  } else if (o.reconnect_every > 0) {
    std::printf(
        "resumed      not compared: a resumed session has no uninterrupted "
        "twin\n");
  }
  PrintSession(Report(o), run.ended, run.tally.token, run.next_step,
               absl::StrCat("--start ", run.next_step));
  if (!o.plot.empty()) {
    RETURN_IF_ERROR(WritePlot(o.plot, o, run));
    std::printf("plot         %s\n", o.plot.c_str());
  }
  if (compare && !reproduced) {
    return absl::InternalError(
        "the resumed streams did not reproduce the uninterrupted predictions");
  }
  return absl::OkStatus();
}

// GetModel, resent like a chunk while the server is unreachable or draining
// (it changes nothing, so resending is always safe): a stream run started in
// the middle of a rolling update must not fail before its first chunk.
absl::StatusOr<v1::ModelInfo> FetchModelWithRetries(
    const Connection& connection, const std::string& name, int retries) {
  std::mt19937 random(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int retry = 1;; ++retry) {
    absl::StatusOr<v1::ModelInfo> model = FetchModel(connection, name);
    if (model.ok() || !absl::IsUnavailable(model.status()) || retry > retries) {
      return model;
    }
    absl::SleepFor(BackoffDelay(RetryPolicy(), retry, unit(random)));
  }
}

// The flags that only the sine demo takes, refused with --tokens, --text or
// --csv.
absl::Status CheckInputFlags(const StreamOptions& o) {
  RETURN_IF_ERROR(o.inputs.CheckOne());
  const char* inputs = o.inputs.Given();
  if (inputs == nullptr) return absl::OkStatus();
  if (o.reconnect_every > 0 || !o.plot.empty() || o.start != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        o.reconnect_every > 0 ? "--reconnect-every"
        : !o.plot.empty()     ? "--plot"
                              : "--start",
        " belongs to the sine demo; it does not apply with ", inputs));
  }
  return absl::OkStatus();
}

// Streams the steps of --tokens, --text or --csv and prints them.
absl::Status RunSequence(const Connection& connection, const StreamOptions& o,
                         const v1::ModelInfo& model) {
  ASSIGN_OR_RETURN(const StreamInputs inputs,
                   LoadStreamInputs(o.inputs, model));
  SequenceOptions options;
  options.model = o.model;
  options.model_version = o.model_version;
  options.transport = o.unary ? RegressSession::Transport::kUnary
                              : RegressSession::Transport::kStream;
  options.retries = static_cast<int>(o.retries);
  options.chunk = o.chunk;
  options.top_k = static_cast<uint32_t>(o.top_k);
  options.resume = o.resume;
  options.end_session = o.end;
  ASSIGN_OR_RETURN(SequenceRun run,
                   StreamSequence(connection, options, model, inputs));
  std::fprintf(stderr, "session %s (%s)\n",
               ShortToken(run.tally.token, o.print_token).c_str(),
               o.resume.empty() ? "new" : "resumed");
  PrintSequenceReport(Report(o), inputs, run);
  return absl::OkStatus();
}

// Binds every flag of rnnctl stream to `o`, which must outlive `flags`.
void AddStreamFlags(FlagSet& flags, StreamOptions& o) {
  AddCommonFlags(flags, &o.common);
  flags.String("model", &o.model, "Regression model to call.");
  flags.String("model-version", &o.model_version,
               "Version of the model a new session runs on; empty: the "
               "newest loaded. A resumed session stays on its own version.");
  flags.Int("steps", &o.steps,
            "Steps of the sine demo to send (--tokens, --text and --csv send "
            "all of theirs).",
            1, int64_t{1} << 32);
  flags.Int("chunk", &o.chunk, "Steps per chunk (per request).", 1,
            int64_t{1} << 32);
  flags.Double("dt", &o.dt, "Time between steps (default pi/10).");
  flags.String("resume", &o.resume,
               "Session token to resume instead of starting a new session.");
  flags.Int("start", &o.start,
            "With --resume: the step where the session stopped (printed by "
            "the previous run). The session's position is read from the "
            "server; a warning says when it differs, and the chunks go on "
            "from the server's step.",
            0);
  flags.Int("reconnect-every", &o.reconnect_every,
            "Close the stream after every N chunks and resume the session on "
            "a new stream; the predictions are compared with those of an "
            "uninterrupted stream. 0: never.",
            0);
  flags.Bool("end", &o.end, "End the session with the last chunk.");
  flags.Bool("unary", &o.unary,
             "Send each chunk with RegressChunk instead of a stream.");
  flags.Bool("quiet", &o.quiet, "Print only the summary, not every step.");
  flags.Bool("print-token", &o.print_token,
             "Print the full session token (it is the session's only "
             "credential), so that the session can be resumed.");
  flags.String("plot", &o.plot,
               "Write an SVG plot of the predictions and of cos(t) here.");
  flags.Int("retries", &o.retries,
            "Resend a chunk up to N times when its call breaks (UNAVAILABLE, "
            "DEADLINE_EXCEEDED, a cut stream, a draining server or session "
            "store), on a new call after an exponential backoff (100 ms "
            "doubling to 5 s, jittered). Every chunk names the position it "
            "is sent from, so the server applies it once: a resent chunk it "
            "had applied is answered again from its stored answer. 0: fail "
            "at once.",
            0, 1000);
  flags.String("tokens", &o.inputs.tokens,
               "Token ids to stream instead of the sine demo, one per step, "
               "e.g. 1,2,3 (for a model with an embedding).");
  flags.String("text", &o.inputs.text,
               "Text to stream instead of the sine demo, one step per "
               "character, encoded with the model's tokenizer (its config's "
               "\"tokenizer\"; refused for a model without one).");
  flags.String("csv", &o.inputs.csv,
               "CSV file of values to stream instead of the sine demo: "
               "input_size values per step, comma-separated, each line "
               "holding whole steps; the lines follow each other.");
  flags.Int("top-k", &o.top_k,
            "For a model with an output activation (sigmoid or softmax): "
            "print each step's K most probable classes (label or index, "
            "probability). 0: none.",
            0, 1 << 20);
}

}  // namespace

absl::Status RunStream(const std::vector<std::string>& args) {
  StreamOptions o;
  FlagSet flags(
      "rnnctl stream [flags]",
      "Streams x_k = sin(k*dt) chunk by chunk through a regression model over "
      "the bidirectional Regress stream and prints, for each step, t, sin(t), "
      "the prediction and the true cos(t), then the mean squared error. With "
      "--tokens, --text or --csv, streams those steps instead and prints each "
      "step's "
      "outputs (or best classes, --top-k). The recurrent state is kept by the "
      "server in a session whose token is printed on stderr.");
  AddStreamFlags(flags, o);
  ASSIGN_OR_RETURN(CommandLine line, ParseCommandLine(flags, args));
  if (line.help) return absl::OkStatus();
  if (!line.positional.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument \"", line.positional[0], "\" (see --help)"));
  }
  if (o.start != 0 && o.resume.empty()) {
    return absl::InvalidArgumentError(
        "--start applies only with --resume: a new session starts at step 0");
  }
  if (o.unary && o.reconnect_every > 0) {
    return absl::InvalidArgumentError(
        "--reconnect-every needs streams; --unary holds none");
  }

  RETURN_IF_ERROR(CheckInputFlags(o));

  ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection,
                   Connection::Create(o.common));
  ASSIGN_OR_RETURN(
      v1::ModelInfo newest,
      FetchModelWithRetries(*connection, o.model, static_cast<int>(o.retries)));
  ASSIGN_OR_RETURN(v1::ModelInfo model, SelectVersion(newest, o.model_version));
  RETURN_IF_ERROR(CheckTask(model, v1::TASK_REGRESSION));
  RETURN_IF_ERROR(CheckTopK(o.top_k, model));
  if (o.inputs.Given() != nullptr) return RunSequence(*connection, o, model);
  if (model.input_kind() == v1::INPUT_KIND_TOKEN_IDS) {
    return absl::FailedPreconditionError(
        absl::StrCat("the sine demo sends values; model \"", o.model,
                     "\" reads token ids: stream them with --tokens",
                     model.has_tokenizer() ? " or text with --text" : ""));
  }
  if (model.input_size() != 1 || model.output_size() < 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("the sine demo sends one value per step; model \"",
                     o.model, "\" has input_size ", model.input_size(),
                     ": stream its values with "
                     "--csv"));
  }
  ASSIGN_OR_RETURN(DemoRun run, RunDemo(*connection, o, model, o.resume, o.end,
                                        o.reconnect_every, /*announce=*/true));
  // The proof that the state survived reconnection: the same inputs over
  // one uninterrupted stream, in a fresh session, give the same outputs.
  std::vector<double> reference;
  const bool compare = o.reconnect_every > 0 && o.resume.empty();
  if (compare) {
    ASSIGN_OR_RETURN(DemoRun ref, RunDemo(*connection, o, model, "", true, 0,
                                          /*announce=*/false));
    for (const StepRecord& s : ref.steps) reference.push_back(s.predicted);
  }
  return PrintStreamReport(o, run, reference);
}

}  // namespace rnnserve::client
