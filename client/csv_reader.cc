#include "client/csv_reader.h"

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace rnnserve::client {

absl::StatusOr<std::vector<CsvSequence>> ReadCsvSequences(
    const std::string& path, bool label_column) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot open \"", path, "\""));
  }
  std::vector<CsvSequence> sequences;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    const absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    CsvSequence sequence;
    sequence.line = line_number;
    int column = 0;
    for (absl::string_view field : absl::StrSplit(text, ',')) {
      ++column;
      field = absl::StripAsciiWhitespace(field);
      if (label_column && column == 1) {
        sequence.label = std::string(field);
        continue;
      }
      const std::string number(field);
      char* end = nullptr;
      // Overflow gives infinity, refused below; underflow gives a tiny
      // value, which is fine.
      const float value = std::strtof(number.c_str(), &end);
      if (number.empty() || *end != '\0' || !std::isfinite(value)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "\"", path, "\" line ", line_number, " column ", column,
            ": expected a finite number, got \"", number, "\""));
      }
      sequence.values.push_back(value);
    }
    if (sequence.values.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", path, "\" line ", line_number, ": no values"));
    }
    sequences.push_back(std::move(sequence));
  }
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("cannot read \"", path, "\""));
  }
  return sequences;
}

}  // namespace rnnserve::client
