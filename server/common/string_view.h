// Debian's abseil is built with its own absl::string_view, not an alias of
// std::string_view, and absl::StrCat does not take the standard one. This
// spells the conversion once, with no copy.
#ifndef RNNSERVE_SERVER_COMMON_STRING_VIEW_H_
#define RNNSERVE_SERVER_COMMON_STRING_VIEW_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace rnnserve {

inline absl::string_view AbslView(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace rnnserve

#endif  // RNNSERVE_SERVER_COMMON_STRING_VIEW_H_
