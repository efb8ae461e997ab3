// Reads sequences from a CSV file: one sequence per line, its values
// comma-separated, step after step; optionally a label in the first column.
// Blank lines and lines starting with '#' are skipped.
#ifndef RNNSERVE_CLIENT_CSV_READER_H_
#define RNNSERVE_CLIENT_CSV_READER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rnnserve::client {

struct CsvSequence {
  int64_t line = 0;   // 1-based line number in the file, for messages.
  std::string label;  // The first column when labelled, else empty.
  std::vector<float> values;
};

// Reads every sequence of the file at `path`. With `label_column`, the first
// field of each line is the label (kept as text, trimmed). A value that is
// not a finite number, or a line without values, is InvalidArgument naming
// the file, line and column.
absl::StatusOr<std::vector<CsvSequence>> ReadCsvSequences(
    const std::string& path, bool label_column);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_CSV_READER_H_
