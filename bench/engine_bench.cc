// The engine alone on the two seed models, single-threaded: what one compute
// thread can do, without gRPC, batching or sessions around it.
//
//   Classify/batch:N          fashion_lstm, N sequences of 28 steps per call
//   ClassifyMixed/batch:64    fashion_lstm, 64 sequences of 1 to 28 steps
//   ClassifyLong/batch:64     fashion_lstm, 64 sequences of 500 steps
//   ClassifyWide/batch:64     fashion_lstm, 64 sequences of 1 to 1000 steps
//   Regress/steps:S/batch:N   sine_rnn, N sessions' chunks of S steps per
//                             call, each session's state carried to its next
//
// items_per_second counts sequences (Classify) or chunks (Regress); steps
// (Classify) counts time steps per second, which compares calls of
// different lengths. Inputs are
// uniform random with a fixed seed; every shape is prepared before timing,
// after a warm-up like the server's (--warmup-steps 1,10,28).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "server/engine/dnnl_engine.h"
#include "server/engine/engine.h"
#include "server/model/loader.h"

namespace rnnserve::engine {
namespace {

// The seed models, looked for under $RNNSERVE_MODELS, then the source tree.
const model::Model& SeedModel(const std::string& name) {
  static const auto* const kModels = [] {
    const char* env = std::getenv("RNNSERVE_MODELS");
    const std::filesystem::path dir =
        env != nullptr ? env : RNNSERVE_SOURCE_DIR "/models";
    auto* models = new std::vector<model::Model>;
    for (const char* n : {"fashion_lstm", "sine_rnn"}) {
      absl::StatusOr<model::Model> m = model::LoadModel(dir / n);
      if (!m.ok()) {
        std::fprintf(stderr, "engine_bench: %s\n",
                     m.status().ToString().c_str());
        std::exit(1);
      }
      models->push_back(*std::move(m));
    }
    return models;
  }();
  for (const model::Model& m : *kModels) {
    if (m.config.name == name) return m;
  }
  std::fprintf(stderr, "engine_bench: no model %s\n", name.c_str());
  std::exit(1);
}

// A single-threaded engine, as each of the server's compute threads has.
std::unique_ptr<Engine> MakeEngine(benchmark::State& state,
                                   const std::string& name) {
  SetThreadsForThisThread(1);
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      CreateDnnlEngine(SeedModel(name));
  if (!engine.ok()) {
    state.SkipWithError(engine.status().ToString().c_str());
    return nullptr;
  }
  // As the server does with its default --warmup-steps: those step counts
  // run as one execution each.
  for (int steps : {1, 10, 28}) {
    if (absl::Status s = (*engine)->Warmup(steps, 256); !s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return nullptr;
    }
  }
  return *std::move(engine);
}

std::vector<float> RandomFloats(size_t n, unsigned seed) {
  std::mt19937 random(seed);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = uniform(random);
  return v;
}

// Sequences of the given lengths with their output buffers.
struct ClassifyCall {
  ClassifyCall(const model::ModelConfig& config, const std::vector<int>& steps)
      : logits(steps.size() * config.output_size),
        probabilities(logits.size()) {
    size_t total = 0;
    for (int s : steps) total += static_cast<size_t>(s) * config.input_size;
    inputs = RandomFloats(total, 1);
    size_t offset = 0;
    const size_t outputs = config.output_size;
    for (size_t i = 0; i < steps.size(); ++i) {
      const size_t n = static_cast<size_t>(steps[i]) * config.input_size;
      items.push_back({steps[i],
                       {inputs.data() + offset, n},
                       {logits.data() + i * outputs, outputs},
                       {probabilities.data() + i * outputs, outputs}});
      offset += n;
    }
  }
  std::vector<float> inputs, logits, probabilities;
  std::vector<ClassifyItem> items;
};

void RunClassify(benchmark::State& state, const std::vector<int>& steps) {
  std::unique_ptr<Engine> engine = MakeEngine(state, "fashion_lstm");
  if (engine == nullptr) return;
  ClassifyCall call(engine->config(), steps);
  // The first call prepares every shape it needs.
  if (absl::Status s = engine->Classify(call.items); !s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  for (auto _ : state) {
    absl::Status s = engine->Classify(call.items);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(call.probabilities.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() *
                          static_cast<int64_t>(steps.size()));
  double total = 0;
  for (int s : steps) total += s;
  state.counters["steps"] =
      benchmark::Counter(total * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

void BM_Classify(benchmark::State& state) {
  RunClassify(state, std::vector<int>(state.range(0), 28));
}
BENCHMARK(BM_Classify)
    ->Name("Classify")
    ->ArgName("batch")
    ->Arg(1)
    ->Arg(16)
    ->Arg(64)
    ->Arg(256);

// Every length from 1 to 28, two or three times each, in a scrambled order
// that bench/pytorch_bench.py spells the same way.
void BM_ClassifyMixed(benchmark::State& state) {
  std::vector<int> steps(state.range(0));
  for (size_t i = 0; i < steps.size(); ++i) steps[i] = 1 + (i * 11) % 28;
  RunClassify(state, steps);
}
BENCHMARK(BM_ClassifyMixed)->Name("ClassifyMixed")->ArgName("batch")->Arg(64);

// A wide spread against its fixed-length match: 64 lengths drawn uniformly
// from 1..1000 with a fixed seed (mean about 500), and 64 of 500.
void BM_ClassifyLong(benchmark::State& state) {
  RunClassify(state, std::vector<int>(state.range(0), 500));
}
BENCHMARK(BM_ClassifyLong)->Name("ClassifyLong")->ArgName("batch")->Arg(64);

void BM_ClassifyWide(benchmark::State& state) {
  std::mt19937 random(3);
  std::uniform_int_distribution<int> length(1, 1000);
  std::vector<int> steps(state.range(0));
  for (int& s : steps) s = length(random);
  RunClassify(state, steps);
}
BENCHMARK(BM_ClassifyWide)->Name("ClassifyWide")->ArgName("batch")->Arg(64);

void BM_Regress(benchmark::State& state) {
  std::unique_ptr<Engine> engine = MakeEngine(state, "sine_rnn");
  if (engine == nullptr) return;
  const model::ModelConfig& config = engine->config();
  const int steps = static_cast<int>(state.range(0));
  const size_t sessions = static_cast<size_t>(state.range(1));
  const size_t chunk = static_cast<size_t>(steps) * config.input_size;
  const size_t outputs = static_cast<size_t>(steps) * config.output_size;
  const size_t state_size = config.state_size();
  const std::vector<float> inputs = RandomFloats(sessions * chunk, 2);
  std::vector<float> states(sessions * state_size, 0.0f);
  std::vector<float> out(sessions * outputs);
  std::vector<RegressItem> items;
  for (size_t i = 0; i < sessions; ++i) {
    // state_out aliases state_in: each call continues where the last ended.
    std::span<float> session(states.data() + i * state_size, state_size);
    items.push_back({steps,
                     {inputs.data() + i * chunk, chunk},
                     session,
                     session,
                     {out.data() + i * outputs, outputs}});
  }
  if (absl::Status s = engine->Regress(items); !s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  for (auto _ : state) {
    absl::Status s = engine->Regress(items);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(sessions));
}
BENCHMARK(BM_Regress)
    ->Name("Regress")
    ->ArgNames({"steps", "batch"})
    ->ArgsProduct({{1, 10}, {1, 256}});

}  // namespace
}  // namespace rnnserve::engine

BENCHMARK_MAIN();
