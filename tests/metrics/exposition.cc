#include "tests/metrics/exposition.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace rnnserve::metrics::testing {
namespace {

bool IsNameChar(char c, bool first) {
  const bool alpha =
      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  return alpha || (!first && c >= '0' && c <= '9');
}

// Reads a metric or label name at text[*pos].
std::string ReadName(const std::string& text, size_t* pos) {
  const size_t start = *pos;
  while (*pos < text.size() && IsNameChar(text[*pos], *pos == start)) ++*pos;
  return text.substr(start, *pos - start);
}

std::optional<double> ParseValue(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);  // Takes Nan, +Inf.
  if (end != text.c_str() + text.size()) return std::nullopt;
  return value;
}

// Parses `{a="x",b="y"}` at text[*pos] (just after the name).
bool ParseLabels(const std::string& text, size_t* pos, Labels* labels) {
  if (*pos >= text.size() || text[*pos] != '{') return true;
  ++*pos;
  while (*pos < text.size() && text[*pos] != '}') {
    const std::string name = ReadName(text, pos);
    if (name.empty() || text.compare(*pos, 2, "=\"") != 0) return false;
    *pos += 2;
    std::string value;
    for (;; ++*pos) {
      if (*pos >= text.size()) return false;
      char c = text[*pos];
      if (c == '"') break;
      if (c == '\\') {
        if (++*pos >= text.size()) return false;
        c = text[*pos] == 'n' ? '\n' : text[*pos];
      }
      value.push_back(c);
    }
    ++*pos;  // The closing quote.
    (*labels)[name] = value;
    if (*pos < text.size() && text[*pos] == ',') ++*pos;
  }
  if (*pos >= text.size()) return false;
  ++*pos;  // '}'
  return true;
}

Labels Without(Labels labels, const std::string& name) {
  labels.erase(name);
  return labels;
}

}  // namespace

std::optional<double> Exposition::Value(const std::string& name,
                                        const Labels& labels) const {
  for (const Sample& s : samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nullopt;
}

std::vector<std::pair<double, double>> Exposition::Buckets(
    const std::string& name, const Labels& labels) const {
  std::vector<std::pair<double, double>> buckets;
  const std::string bucket_name = name + "_bucket";
  for (const Sample& s : samples) {
    auto le = s.labels.find("le");
    if (s.name != bucket_name || le == s.labels.end() ||
        Without(s.labels, "le") != labels) {
      continue;
    }
    buckets.emplace_back(ParseValue(le->second).value_or(-1), s.value);
  }
  std::sort(buckets.begin(), buckets.end());
  return buckets;
}

std::optional<double> Exposition::Bucket(const std::string& name,
                                         const Labels& labels,
                                         double le) const {
  for (const auto& [bound, count] : Buckets(name, labels)) {
    // Bounds are printed in decimal: compare with a relative tolerance.
    if (std::abs(bound - le) <= 1e-9 * std::max(1.0, std::abs(le))) {
      return count;
    }
  }
  return std::nullopt;
}

absl::StatusOr<Exposition> ParseExposition(const std::string& text) {
  Exposition out;
  std::istringstream in(text);
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream comment(line.substr(1));
      std::string keyword, family;
      comment >> keyword >> family;
      std::string rest;
      std::getline(comment, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      if (keyword == "TYPE") out.types[family] = rest;
      if (keyword == "HELP") out.helps[family] = rest;
      continue;
    }
    Sample sample;
    size_t pos = 0;
    sample.name = ReadName(line, &pos);
    bool ok = !sample.name.empty() && ParseLabels(line, &pos, &sample.labels);
    std::istringstream rest(ok ? line.substr(pos) : "");
    std::string value;
    rest >> value;  // An optional timestamp may follow; it is ignored.
    std::optional<double> parsed = ParseValue(value);
    if (!ok || !parsed) {
      return absl::InvalidArgumentError(
          absl::StrCat("exposition line ", number, " malformed: ", line));
    }
    sample.value = *parsed;
    out.samples.push_back(std::move(sample));
  }
  return out;
}

}  // namespace rnnserve::metrics::testing
