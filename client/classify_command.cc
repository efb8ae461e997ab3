// rnnctl classify: sends Fashion-MNIST images or CSV sequences to a
// classification model and reports predictions or accuracy and speed.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/classify_inputs.h"
#include "client/classify_runner.h"
#include "client/commands.h"
#include "client/common_flags.h"
#include "client/connection.h"
#include "client/model_info.h"
#include "server/common/status_macros.h"

namespace rnnserve::client {
namespace {

constexpr char kFashionDir[] = "/usr/share/datasets/fashion-mnist/";

struct ClassifyOptions {
  CommonOptions common;
  std::string model = "fashion_lstm";
  std::string model_version;
  std::string images = absl::StrCat(kFashionDir, "t10k-images-idx3-ubyte.gz");
  std::string labels = absl::StrCat(kFashionDir, "t10k-labels-idx1-ubyte.gz");
  int64_t count = 1000;
  int64_t offset = 0;
  std::string csv;
  std::string tokens;
  std::string text;
  bool csv_label_column = false;
  int64_t batch = 32;
  int64_t concurrency = 4;
  int64_t top_k = 0;  // 0: 3 for one sequence (--tokens, --text), else 1.
  bool verbose = false;
};

std::string ClassName(const v1::ModelInfo& model, int index) {
  if (index >= 0 && index < model.labels_size()) return model.labels(index);
  return absl::StrCat(index);
}

// The predicted class: the first of `top`, else the most probable.
int Predicted(const v1::Classification& result) {
  if (result.top_size() > 0) return static_cast<int>(result.top(0).index());
  int best = -1;
  for (int i = 0; i < result.probabilities_size(); ++i) {
    if (best < 0 || result.probabilities(i) > result.probabilities(best)) {
      best = i;
    }
  }
  return best;
}

void PrintVerbose(const v1::ModelInfo& model, const ClassifyInputs& inputs,
                  const std::vector<const v1::Classification*>& results) {
  const bool labelled = !inputs.true_classes.empty();
  if (!inputs.description.empty()) {
    std::printf("%s\n", inputs.description.c_str());
  }
  std::printf("%-8s %-14s %-14s %-8s%s\n", inputs.source_name.c_str(),
              labelled ? "true" : "", "predicted", "prob",
              labelled ? " match" : "");
  for (size_t i = 0; i < results.size(); ++i) {
    const v1::Classification& r = *results[i];
    const int predicted = Predicted(r);
    const float probability = r.top_size() > 0 ? r.top(0).probability()
                              : predicted >= 0 ? r.probabilities(predicted)
                                               : 0.0f;
    std::string line = absl::StrFormat(
        "%-8d %-14s %-14s %-8.4f", inputs.source_index[i],
        labelled ? ClassName(model, inputs.true_classes[i]) : "",
        ClassName(model, predicted), probability);
    if (labelled) {
      line += predicted == inputs.true_classes[i] ? " yes" : " NO";
    }
    for (int k = 1; k < r.top_size(); ++k) {
      absl::StrAppendFormat(&line, "%s %s %.4f", k == 1 ? "  | then" : ",",
                            ClassName(model, r.top(k).index()),
                            r.top(k).probability());
    }
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace

absl::Status RunClassify(const std::vector<std::string>& args) {
  ClassifyOptions o;
  FlagSet flags(
      "rnnctl classify [flags]",
      "Classifies sequences with a classification model: Fashion-MNIST "
      "images from idx files (each image scaled to [0,1] and sent row by row, "
      "28 steps of 28 values), or the lines of a CSV file with --csv. Prints "
      "a summary (accuracy when the true labels are known, throughput, "
      "latency), or every prediction with --verbose. One sequence of token "
      "ids (--tokens) or of text (--text) prints its top classes.");
  AddCommonFlags(flags, &o.common);
  flags.String("model", &o.model, "Classification model to call.");
  flags.String("model-version", &o.model_version,
               "Version of the model to call; empty: the newest loaded.");
  flags.String("images", &o.images, "idx images file, gzip-compressed or not.");
  flags.String("labels", &o.labels,
               "idx labels file matching --images; empty for none.");
  flags.Int("count", &o.count, "Number of images to classify.", 1);
  flags.Int("offset", &o.offset, "Index of the first image.", 0);
  flags.String("csv", &o.csv,
               "CSV file to classify instead of images: one sequence per "
               "line, steps * input_size comma-separated values.");
  flags.String("tokens", &o.tokens,
               "Token ids to classify instead of images, one sequence, e.g. "
               "1,2,3 (one id per step; for a model with an embedding).");
  flags.String("text", &o.text,
               "Text to classify instead of images, one sequence, for a "
               "model with a tokenizer (e.g. word_language): one step per "
               "character. Prints the top classes.");
  flags.Bool("csv-label-column", &o.csv_label_column,
             "The first CSV column is the true class (index or label).");
  flags.Int("batch", &o.batch, "Sequences per request.", 1);
  flags.Int("concurrency", &o.concurrency, "Requests in flight.", 1, 4096);
  flags.Int("top-k", &o.top_k,
            "Classes returned per sequence; 0: 3 for --tokens and --text, "
            "1 otherwise.",
            0, 1 << 20);
  flags.Bool("verbose", &o.verbose, "Print every prediction.");
  ASSIGN_OR_RETURN(CommandLine line, ParseCommandLine(flags, args));
  if (line.help) return absl::OkStatus();
  if (!line.positional.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument \"", line.positional[0], "\" (see --help)"));
  }

  ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection,
                   Connection::Create(o.common));
  ASSIGN_OR_RETURN(v1::ModelInfo newest, FetchModel(*connection, o.model));
  ASSIGN_OR_RETURN(v1::ModelInfo model, SelectVersion(newest, o.model_version));
  RETURN_IF_ERROR(CheckTask(model, v1::TASK_CLASSIFICATION));
  ClassifyInputs inputs;
  const bool one_sequence = !o.tokens.empty() || !o.text.empty();
  if (!o.tokens.empty() && !o.text.empty()) {
    return absl::InvalidArgumentError("give --tokens or --text, not both");
  }
  if (o.top_k == 0) o.top_k = one_sequence ? 3 : 1;
  if (one_sequence) o.verbose = true;
  if (!o.text.empty()) {
    ASSIGN_OR_RETURN(inputs, LoadTextInputs(o.text, model));
  } else if (!o.tokens.empty()) {
    ASSIGN_OR_RETURN(inputs, LoadTokenInputs(o.tokens, model));
  } else if (!o.csv.empty()) {
    ASSIGN_OR_RETURN(inputs, LoadCsvInputs(o.csv, o.csv_label_column, model));
  } else {
    ASSIGN_OR_RETURN(
        inputs, LoadIdxInputs(o.images, o.labels, o.offset, o.count, model));
  }
  const int64_t total = static_cast<int64_t>(inputs.sequences.size());
  int64_t batch = o.batch;
  if (model.max_sequences_per_request() > 0 &&
      batch > model.max_sequences_per_request()) {
    batch = model.max_sequences_per_request();
    std::fprintf(stderr,
                 "rnnctl: --batch lowered to %lld, the server's maximum of "
                 "sequences per request\n",
                 static_cast<long long>(batch));
  }

  std::vector<v1::ClassifyRequest> requests;
  for (int64_t first = 0; first < total; first += batch) {
    v1::ClassifyRequest& request = requests.emplace_back();
    request.set_model(o.model);
    request.set_model_version(o.model_version);
    request.set_top_k(static_cast<uint32_t>(o.top_k));
    for (int64_t i = first; i < std::min(first + batch, total); ++i) {
      *request.add_sequences() = std::move(inputs.sequences[i]);
    }
  }
  ASSIGN_OR_RETURN(ClassifyRunResult run,
                   RunClassifyRequests(*connection, requests,
                                       static_cast<int>(o.concurrency)));

  std::vector<const v1::Classification*> results;
  for (const v1::ClassifyResponse& response : run.responses) {
    for (const v1::Classification& r : response.results()) {
      results.push_back(&r);
    }
  }
  if (o.verbose) PrintVerbose(model, inputs, results);

  const std::string& version = run.responses.front().model_version();
  std::printf("model        %s (version %s)\n", o.model.c_str(),
              version.c_str());
  std::printf("sequences    %lld\n", static_cast<long long>(total));
  if (!inputs.true_classes.empty()) {
    int64_t correct = 0;
    for (size_t i = 0; i < results.size(); ++i) {
      correct += Predicted(*results[i]) == inputs.true_classes[i];
    }
    std::printf("accuracy     %.4f (%lld/%lld)\n",
                static_cast<double>(correct) / total,
                static_cast<long long>(correct), static_cast<long long>(total));
  }
  const double seconds = absl::ToDoubleSeconds(run.wall);
  std::printf("requests     %zu (batch %lld, concurrency %lld)\n",
              requests.size(), static_cast<long long>(batch),
              static_cast<long long>(o.concurrency));
  std::printf("wall time    %.3f s\n", seconds);
  std::printf("throughput   %.0f sequences/s\n",
              seconds > 0 ? total / seconds : 0.0);
  const LatencySummary l = run.latencies.Summarize();
  std::printf(
      "latency      p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms "
      "(per request)\n",
      absl::ToDoubleMilliseconds(l.p50), absl::ToDoubleMilliseconds(l.p90),
      absl::ToDoubleMilliseconds(l.p99), absl::ToDoubleMilliseconds(l.max));
  return absl::OkStatus();
}

}  // namespace rnnserve::client
