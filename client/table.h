// Plain-text tables for rnnctl's listings.
#ifndef RNNSERVE_CLIENT_TABLE_H_
#define RNNSERVE_CLIENT_TABLE_H_

#include <string>
#include <vector>

namespace rnnserve::client {

// `rows` as left-aligned columns two spaces apart, one line per row (each
// ending in '\n'), the first row usually being the header. Rows may differ
// in length; the last cell of a row is not padded. Widths count characters
// (UTF-8 code points), not bytes.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_TABLE_H_
