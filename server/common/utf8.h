// UTF-8 encoding and validation, as the JSON parser needs them.
#ifndef RNNSERVE_SERVER_COMMON_UTF8_H_
#define RNNSERVE_SERVER_COMMON_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rnnserve {

// Appends the UTF-8 encoding of code point `cp`, which must be at most
// U+10FFFF and not a surrogate.
void AppendUtf8(uint32_t cp, std::string* out);

// The length (2 to 4) of the well-formed multi-byte UTF-8 sequence that
// starts `s`, or 0 if `s` does not start with one (ASCII bytes included).
// Well-formed as Unicode's table 3-7 says: no overlong forms, no encoded
// surrogates, nothing above U+10FFFF, no sequence cut short.
size_t Utf8SequenceLength(std::string_view s);

}  // namespace rnnserve

#endif  // RNNSERVE_SERVER_COMMON_UTF8_H_
