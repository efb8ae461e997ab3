#include "client/bench_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rnnserve::client {
namespace {

double PerSecond(int64_t count, absl::Duration wall) {
  const double seconds = absl::ToDoubleSeconds(wall);
  return seconds > 0 ? count / seconds : 0.0;
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// Our strings are flag values and names; escape what JSON requires anyway.
std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string CodeName(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

}  // namespace

std::string BenchText(const BenchDescription& d, const LoadResult& r) {
  std::string out;
  absl::StrAppendFormat(&out, "mode         %s", d.mode);
  if (d.operation == "chunks") {
    absl::StrAppendFormat(&out, " (model %s, chunks of %d steps, %s)", d.model,
                          d.units_per_op, d.input);
  } else if (!d.model.empty()) {
    absl::StrAppendFormat(&out, " (model %s, batch %d, %s)", d.model,
                          d.units_per_op, d.input);
  }
  absl::StrAppendFormat(&out, "\nconcurrency  %d on %d channel%s\n",
                        d.concurrency, d.channels, d.channels == 1 ? "" : "s");
  absl::StrAppendFormat(&out, "measured     %.3f s after a %s warm-up\n",
                        absl::ToDoubleSeconds(r.wall),
                        absl::FormatDuration(d.warmup));
  absl::StrAppendFormat(&out, "%-12s %d (%.1f/s)\n", d.operation, r.operations,
                        PerSecond(r.operations, r.wall));
  if (!d.unit.empty()) {
    absl::StrAppendFormat(&out, "%-12s %d (%.1f/s)\n", d.unit, r.units,
                          PerSecond(r.units, r.wall));
  }
  std::string errors;
  for (const auto& [code, count] : r.errors) {
    absl::StrAppendFormat(&errors, "%s%s (%d): %d", errors.empty() ? "" : ", ",
                          CodeName(code), code, count);
  }
  absl::StrAppendFormat(&out, "errors       %s",
                        errors.empty() ? "none" : errors);
  if (d.operation == "chunks" && !errors.empty()) out += " (failed streams)";
  if (r.warmup_errors > 0) {
    absl::StrAppendFormat(&out, "; %d more during the warm-up",
                          r.warmup_errors);
  }
  const LatencySummary& l = r.latency;
  absl::StrAppendFormat(&out,
                        "\nlatency ms   p50 %.3f  p90 %.3f  p99 %.3f  max %.3f"
                        "  (mean %.3f, min %.3f, per %s)\n",
                        Ms(l.p50), Ms(l.p90), Ms(l.p99), Ms(l.max), Ms(l.mean),
                        Ms(l.min),
                        d.operation == "chunks" ? "chunk" : "request");
  return out;
}

std::string BenchJson(const BenchDescription& d, const LoadResult& r) {
  std::string errors;
  for (const auto& [code, count] : r.errors) {
    absl::StrAppendFormat(&errors, "%s%s: %d", errors.empty() ? "" : ", ",
                          JsonString(CodeName(code)), count);
  }
  const LatencySummary& l = r.latency;
  std::string out = absl::StrFormat(
      "{\"mode\": %s, \"model\": %s, \"concurrency\": %d, \"channels\": %d, "
      "\"warmup_s\": %.3f, \"wall_s\": %.6f, \"operation\": %s, "
      "\"completed\": %d, \"per_second\": %.3f, ",
      JsonString(d.mode), JsonString(d.model), d.concurrency, d.channels,
      absl::ToDoubleSeconds(d.warmup), absl::ToDoubleSeconds(r.wall),
      JsonString(d.operation), r.operations, PerSecond(r.operations, r.wall));
  if (!d.unit.empty()) {
    absl::StrAppendFormat(&out,
                          "\"unit\": %s, \"units_per_operation\": %d, "
                          "\"units\": %d, \"units_per_second\": %.3f, ",
                          JsonString(d.unit), d.units_per_op, r.units,
                          PerSecond(r.units, r.wall));
  }
  absl::StrAppendFormat(
      &out,
      "\"errors\": {%s}, \"warmup_errors\": %d, \"latency_ms\": {\"count\": "
      "%d, \"min\": %.6f, \"mean\": %.6f, \"p50\": %.6f, \"p90\": %.6f, "
      "\"p99\": %.6f, \"max\": %.6f}}\n",
      errors, r.warmup_errors, l.count, Ms(l.min), Ms(l.mean), Ms(l.p50),
      Ms(l.p90), Ms(l.p99), Ms(l.max));
  return out;
}

}  // namespace rnnserve::client
