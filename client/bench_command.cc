// rnnctl bench: closed-loop load against Classify, Regress streams, or the
// standard health check (the RPC floor: what a call costs with no model).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/bench_load.h"
#include "client/bench_mode.h"
#include "client/bench_report.h"
#include "client/bench_stream.h"
#include "client/classify_inputs.h"
#include "client/commands.h"
#include "client/common_flags.h"
#include "client/connection.h"
#include "client/model_info.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/common/status_macros.h"

namespace rnnserve::client {
namespace {

// Distinct classify requests the workers share, so the server does not see
// one identical input over and over.
constexpr int kDistinctRequests = 8;

struct BenchOptions {
  CommonOptions common;
  std::string mode_name = "classify";  // --mode, parsed into `mode`.
  BenchMode mode = BenchMode::kClassify;
  int64_t concurrency = 16;
  absl::Duration duration = absl::Seconds(10);
  int64_t requests = 0;
  absl::Duration warmup = absl::Seconds(1);
  std::string model;
  int64_t batch = 1;
  std::string input = "synthetic";
  std::string images =
      "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  int64_t steps = 28;
  int64_t chunk = 10;
  int64_t channels = 1;
  std::string health_service;
  bool json = false;
};

absl::StatusOr<std::vector<v1::ClassifyRequest>> MakeClassifyRequests(
    const BenchOptions& o, const v1::ModelInfo& model) {
  if (model.max_sequences_per_request() > 0 &&
      o.batch > model.max_sequences_per_request()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--batch ", o.batch, " exceeds the server's maximum of ",
        model.max_sequences_per_request(), " sequences per request"));
  }
  std::vector<v1::Sequence> sequences;
  const int64_t needed = kDistinctRequests * o.batch;
  if (o.input == "fashion") {
    ASSIGN_OR_RETURN(ClassifyInputs inputs,
                     LoadIdxInputs(o.images, "", 0, needed, model));
    sequences = std::move(inputs.sequences);
  } else {
    std::mt19937 random(42);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    for (int64_t i = 0; i < needed; ++i) {
      v1::Sequence& s = sequences.emplace_back();
      s.set_steps(static_cast<uint32_t>(o.steps));
      for (int64_t v = 0; v < o.steps * model.input_size(); ++v) {
        s.add_values(uniform(random));
      }
    }
  }
  std::vector<v1::ClassifyRequest> requests(kDistinctRequests);
  for (int64_t i = 0; i < needed; ++i) {
    v1::ClassifyRequest& r = requests[i / o.batch];
    r.set_model(o.model);
    *r.add_sequences() = sequences[i % sequences.size()];
  }
  return requests;
}

void PrintProgress(const LoadControl& control, double elapsed, double rate,
                   const std::string& operation, bool tty) {
  const std::string line = absl::StrFormat(
      "[%5.1fs] %-9s %10d %s measured, %9.1f/s now, %d errors", elapsed,
      control.warming_up(BenchClock::now()) ? "warm-up" : "measuring",
      control.measured_operations(), operation, rate, control.total_errors());
  std::fprintf(stderr, tty ? "\r%s\033[K" : "%s\n", line.c_str());
}

// Runs the load until the duration or the count is reached, printing a
// progress line every second.
LoadResult RunLoad(LoadControl& control, const BenchOptions& o,
                   const std::string& operation) {
  const bool tty = isatty(STDERR_FILENO);
  const BenchClock::time_point begin = BenchClock::now();
  BenchClock::time_point next_report = begin + std::chrono::seconds(1);
  int64_t last_total = 0;
  while (!control.ShouldStop()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const BenchClock::time_point now = BenchClock::now();
    if (o.requests == 0 && now >= control.measure_end()) control.Stop();
    if (now >= next_report) {
      const int64_t total = control.total_operations();
      PrintProgress(control, std::chrono::duration<double>(now - begin).count(),
                    static_cast<double>(total - last_total), operation, tty);
      last_total = total;
      next_report += std::chrono::seconds(1);
    }
  }
  LoadResult result = control.Finish();
  if (tty) std::fputs("\n", stderr);
  return result;
}

// What the workers read; it lives until control.Finish().
struct WorkerInputs {
  std::vector<v1::ClassifyRequest> classify_requests;
  std::vector<std::unique_ptr<grpc::health::v1::Health::Stub>> health_stubs;
  grpc::health::v1::HealthCheckRequest health_request;
  StreamBenchPlan stream_plan;
};

absl::Status PrepareClassify(const BenchOptions& o, Connection& connection,
                             WorkerInputs& inputs,
                             BenchDescription& description) {
  ASSIGN_OR_RETURN(v1::ModelInfo model, FetchModel(connection, o.model));
  RETURN_IF_ERROR(CheckTask(model, v1::TASK_CLASSIFICATION));
  ASSIGN_OR_RETURN(inputs.classify_requests, MakeClassifyRequests(o, model));
  description.unit = "sequences";
  description.units_per_op = o.batch;
  description.input = o.input == "fashion"
                          ? "Fashion-MNIST images"
                          : absl::StrCat("synthetic, ", o.steps, " steps");
  return absl::OkStatus();
}

absl::Status PrepareStream(const BenchOptions& o, Connection& connection,
                           WorkerInputs& inputs,
                           BenchDescription& description) {
  ASSIGN_OR_RETURN(v1::ModelInfo model, FetchModel(connection, o.model));
  RETURN_IF_ERROR(CheckTask(model, v1::TASK_REGRESSION));
  StreamBenchPlan& plan = inputs.stream_plan;
  plan.model = o.model;
  plan.chunk_steps = static_cast<uint32_t>(o.chunk);
  for (int64_t k = 0; k < o.chunk; ++k) {
    for (uint32_t f = 0; f < model.input_size(); ++f) {
      plan.chunk_values.push_back(static_cast<float>(std::sin(k * M_PI / 10)));
    }
  }
  // A stream lives as long as the run; --timeout is the slack after it.
  if (o.requests == 0 && o.common.timeout > absl::ZeroDuration()) {
    plan.deadline = absl::Now() + o.warmup + o.duration + o.common.timeout;
  }
  description.operation = "chunks";
  description.unit = "steps";
  description.units_per_op = o.chunk;
  description.input = "sin(t)";
  return absl::OkStatus();
}

void PrepareHealth(const BenchOptions& o, Connection& connection,
                   WorkerInputs& inputs) {
  for (int i = 0; i < connection.num_channels(); ++i) {
    inputs.health_stubs.push_back(
        grpc::health::v1::Health::NewStub(connection.channel(i)));
  }
  inputs.health_request.set_service(o.health_service);
}

absl::Status Prepare(const BenchOptions& o, Connection& connection,
                     WorkerInputs& inputs, BenchDescription& description) {
  switch (o.mode) {
    case BenchMode::kClassify:
      return PrepareClassify(o, connection, inputs, description);
    case BenchMode::kStream:
      return PrepareStream(o, connection, inputs, description);
    case BenchMode::kHealth:
      PrepareHealth(o, connection, inputs);
      return absl::OkStatus();
  }
  return absl::InternalError("unknown bench mode");
}

void StartWorker(LoadControl& control, int w, const BenchOptions& o,
                 Connection& connection, const WorkerInputs& inputs) {
  switch (o.mode) {
    case BenchMode::kStream:
      StartStreamWorker(control, w, connection, inputs.stream_plan);
      return;
    case BenchMode::kClassify: {
      auto response = std::make_shared<v1::ClassifyResponse>();
      const v1::ClassifyRequest* request =
          &inputs.classify_requests[w % inputs.classify_requests.size()];
      v1::Inference::Stub::async_interface* stub =
          connection.inference(w).async();
      StartUnaryWorker(
          control, w, connection,
          [stub, request, response](grpc::ClientContext* context,
                                    std::function<void(grpc::Status)> done) {
            stub->Classify(context, request, response.get(), std::move(done));
          },
          o.batch);
      return;
    }
    case BenchMode::kHealth: {
      auto response = std::make_shared<grpc::health::v1::HealthCheckResponse>();
      auto* stub = inputs.health_stubs[w % inputs.health_stubs.size()]->async();
      const auto* request = &inputs.health_request;
      StartUnaryWorker(
          control, w, connection,
          [stub, request, response](grpc::ClientContext* context,
                                    std::function<void(grpc::Status)> done) {
            stub->Check(context, request, response.get(), std::move(done));
          },
          0);
      return;
    }
  }
}

void AddBenchFlags(FlagSet& flags, BenchOptions& o) {
  AddCommonFlags(flags, &o.common);
  flags.String("mode", &o.mode_name, "classify, stream or health.");
  flags.Int("concurrency", &o.concurrency,
            "Workers: requests in flight, or concurrent sessions for stream.",
            1, 100000);
  flags.Duration("duration", &o.duration, "How long to measure.");
  flags.Int("requests", &o.requests,
            "Measure this many requests (chunks for stream) instead of a "
            "duration; 0: use --duration.",
            0);
  flags.Duration("warmup", &o.warmup, "Load before measuring, not counted.");
  flags.String("model", &o.model,
               "Model to call; empty: fashion_lstm for classify, sine_rnn for "
               "stream.");
  flags.Int("batch", &o.batch, "classify: sequences per request.", 1, 1 << 20);
  flags.String("input", &o.input,
               "classify: 'synthetic' (uniform random values) or 'fashion' "
               "(images from --images).");
  flags.String("images", &o.images,
               "classify: idx images for --input fashion.");
  flags.Int("steps", &o.steps, "classify: steps of a synthetic sequence.", 1,
            1 << 20);
  flags.Int("chunk", &o.chunk, "stream: steps per chunk.", 1, 1 << 20);
  flags.Int("channels", &o.channels,
            "Channels (TCP connections) the workers are spread over.", 1, 1024);
  flags.String("health-service", &o.health_service,
               "health: service name to check; empty means the server.");
  flags.Bool("json", &o.json, "Print the summary as one JSON object.");
}

// Checks the parsed flags and fills in what they imply: the mode, and the
// mode's default model.
absl::Status FinishOptions(const CommandLine& line, BenchOptions& o) {
  if (!line.positional.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument \"", line.positional[0], "\" (see --help)"));
  }
  ASSIGN_OR_RETURN(o.mode, ParseBenchMode(o.mode_name));
  if (o.input != "synthetic" && o.input != "fashion") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--input: expected synthetic or fashion, got \"", o.input, "\""));
  }
  if (o.requests == 0 && o.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--duration must be above 0");
  }
  if (o.model.empty()) o.model = std::string(BenchDefaultModel(o.mode));
  return absl::OkStatus();
}

}  // namespace

absl::Status RunBench(const std::vector<std::string>& args) {
  BenchOptions o;
  FlagSet flags(
      "rnnctl bench [flags]",
      "Closed-loop load generator: --concurrency workers each keep one "
      "operation in flight and start the next as soon as it is answered. "
      "Modes: classify (Classify requests of --batch sequences), stream (one "
      "session per worker on its own Regress stream, chunks of --chunk steps "
      "back to back), health (grpc.health.v1.Health/Check: the cost of a bare "
      "RPC, to compare against). Prints progress every second on stderr, "
      "then throughput, errors by status code and latency percentiles.");
  AddBenchFlags(flags, o);
  ASSIGN_OR_RETURN(CommandLine line, ParseCommandLine(flags, args));
  if (line.help) return absl::OkStatus();
  RETURN_IF_ERROR(FinishOptions(line, o));

  ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection,
                   Connection::Create(o.common, static_cast<int>(o.channels)));
  const int workers = static_cast<int>(o.concurrency);
  BenchDescription description;
  description.mode = std::string(BenchModeName(o.mode));
  description.model = o.model;
  description.operation = "requests";
  description.concurrency = workers;
  description.channels = static_cast<int>(o.channels);
  description.warmup = o.warmup;
  WorkerInputs inputs;
  RETURN_IF_ERROR(Prepare(o, *connection, inputs, description));

  LoadControl control(LoadPlan{.workers = workers,
                               .warmup = o.warmup,
                               .duration = o.duration,
                               .operations = o.requests});
  control.Begin();
  for (int w = 0; w < workers; ++w)
    StartWorker(control, w, o, *connection, inputs);
  const LoadResult result = RunLoad(control, o, description.operation);

  std::fputs(o.json ? BenchJson(description, result).c_str()
                    : BenchText(description, result).c_str(),
             stdout);
  if (result.operations == 0 && !result.errors.empty()) {
    const auto& [code, count] = *result.errors.begin();
    return absl::Status(static_cast<absl::StatusCode>(code),
                        absl::StrCat("every measured ", description.operation,
                                     " failed (", count, " with this code)"));
  }
  return absl::OkStatus();
}

}  // namespace rnnserve::client
