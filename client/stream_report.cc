#include "client/stream_report.h"

#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/table.h"

namespace rnnserve::client {

std::string ShortToken(const std::string& token, bool full) {
  if (full || token.size() <= 8) return token;
  return absl::StrCat(token.substr(0, 8), "\u2026");
}

void PrintCalls(const StreamReportOptions& o, size_t steps,
                const SessionTally& tally) {
  const int64_t chunks = (static_cast<int64_t>(steps) + o.chunk - 1) / o.chunk;
  std::printf("steps        %zu in %lld chunk%s of up to %lld\n", steps,
              static_cast<long long>(chunks), chunks == 1 ? "" : "s",
              static_cast<long long>(o.chunk));
  if (o.unary) {
    std::printf("calls        %d RegressChunk calls\n", tally.calls);
  } else {
    std::printf("streams      %d%s\n", tally.calls,
                o.reconnect_every > 0
                    ? absl::StrCat(" (reopened after every ", o.reconnect_every,
                                   " chunks)")
                          .c_str()
                    : "");
  }
  if (tally.retries > 0) {
    std::printf(
        "retries      %d chunk%s resent after a broken call (%d answer%s "
        "replayed by the server, %d new session%s begun again)\n",
        tally.retries, tally.retries == 1 ? "" : "s", tally.replays,
        tally.replays == 1 ? "" : "s", tally.restarts,
        tally.restarts == 1 ? "" : "s");
  }
}

void PrintSession(const StreamReportOptions& o, bool ended,
                  const std::string& token, uint64_t next_step,
                  const std::string& next) {
  if (ended) {
    std::printf("session      ended\n");
    return;
  }
  std::printf(
      "session      %s left open at step %llu; continue with:\n"
      "  rnnctl stream --model %s --resume %s %s\n",
      ShortToken(token, o.print_token).c_str(),
      static_cast<unsigned long long>(next_step), o.model.c_str(),
      o.print_token ? token.c_str() : "<token from --print-token>",
      next.c_str());
}

namespace {

// The INPUT column's header and what the continue line asks for next.
struct InputColumn {
  const char* header;
  const char* next;
};

InputColumn ColumnOf(const StreamInputs& inputs) {
  if (inputs.flag == "--tokens") return {"TOKEN", "--tokens <the next ids>"};
  if (inputs.flag == "--text") {
    return {"TOKEN", "--text <the next characters>"};
  }
  return {"INPUT", "--csv <the next steps>"};
}

}  // namespace

void PrintSequenceReport(const StreamReportOptions& o,
                         const StreamInputs& inputs, const SequenceRun& run) {
  const InputColumn column = ColumnOf(inputs);
  if (!o.quiet) {
    std::vector<std::vector<std::string>> rows = {
        {"STEP", column.header, o.top_k > 0 ? "TOP" : "OUTPUTS"}};
    for (const SequenceStep& s : run.steps) {
      std::string out = FormatStepTop(s.top);
      if (o.top_k == 0) {
        for (const float v : s.outputs) {
          absl::StrAppend(&out, out.empty() ? "" : " ",
                          absl::StrFormat("%.6f", v));
        }
      }
      rows.push_back({absl::StrCat(s.step), inputs.Describe(s.input), out});
    }
    std::fputs(FormatTable(rows).c_str(), stdout);
  }
  std::printf("model        %s (version %s)\n", o.model.c_str(),
              run.version.c_str());
  PrintCalls(o, run.steps.size(), run.tally);
  PrintSession(o, run.ended, run.tally.token, run.next_step, column.next);
}

}  // namespace rnnserve::client
