#include "client/table.h"

#include <algorithm>

namespace rnnserve::client {
namespace {

// The width of a cell on a terminal: its characters, not its bytes (a
// --text cell holds letters such as "é"); UTF-8 continuation bytes are
// 10xxxxxx.
size_t Width(const std::string& cell) {
  return static_cast<size_t>(std::count_if(
      cell.begin(), cell.end(),
      [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

}  // namespace

std::string FormatTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], Width(row[c]));
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(widths[c] - Width(row[c]) + 2, ' ');
    }
    // A row whose last cells are empty would end in spaces.
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace rnnserve::client
