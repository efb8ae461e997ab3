// A recursive-descent parser for RFC 8259 JSON. Every read of the input goes
// through AtEnd()/Peek() or a length check first, so that a truncated or
// hostile text ends in an error, never a read past its end.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <system_error>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/common/json.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"
#include "server/common/utf8.h"

namespace rnnserve::json {
namespace {

constexpr int kDepthCeiling = 512;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The value of a hex digit, or -1.
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A byte for a message: 'x' when printable, else 0xNN.
std::string DescribeByte(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return absl::StrCat("'", std::string(1, c), "'");
  static constexpr char kHex[] = "0123456789ABCDEF";
  return absl::StrCat("byte 0x", std::string(1, kHex[u >> 4]),
                      std::string(1, kHex[u & 0xF]));
}

class Parser {
 public:
  Parser(std::string_view text, const ParseOptions& options)
      : text_(text),
        max_depth_(std::min(options.max_depth, kDepthCeiling)),
        max_values_(options.max_values) {}

  absl::StatusOr<Value> ParseDocument() {
    Value value;
    RETURN_IF_ERROR(ParseValue(0, &value));
    SkipWhitespace();
    if (!AtEnd()) {
      return Error(pos_, absl::StrCat("unexpected ", DescribeByte(Peek()),
                                      " after the JSON value"));
    }
    return value;
  }

 private:
  absl::Status Error(size_t at, std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed JSON at byte ", at, ": ", AbslView(what)));
  }

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }  // Only when !AtEnd().

  void SkipWhitespace() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t' || Peek() == '\n' ||
                        Peek() == '\r')) {
      ++pos_;
    }
  }

  absl::Status Expect(char c, std::string_view context) {
    if (AtEnd()) {
      return Error(pos_,
                   absl::StrCat("unexpected end of input, expected '",
                                std::string(1, c), "' ", AbslView(context)));
    }
    if (Peek() != c) {
      return Error(pos_, absl::StrCat("expected '", std::string(1, c), "' ",
                                      AbslView(context), ", got ",
                                      DescribeByte(Peek())));
    }
    ++pos_;
    return absl::OkStatus();
  }

  // Skips whitespace, then parses one value of nesting level `depth` (the
  // number of enclosing arrays and objects).
  absl::Status ParseValue(int depth, Value* out) {
    SkipWhitespace();
    if (AtEnd())
      return Error(pos_, "unexpected end of input, expected a value");
    if (++values_ > max_values_) {
      return Error(pos_, absl::StrCat("more than ", max_values_, " values"));
    }
    switch (Peek()) {
      case '{':
      case '[':
        if (depth + 1 > max_depth_) {
          return Error(pos_, absl::StrCat("arrays and objects nested deeper "
                                          "than ",
                                          max_depth_));
        }
        return Peek() == '{' ? ParseObject(depth + 1, out)
                             : ParseArray(depth + 1, out);
      case '"': {
        std::string s;
        RETURN_IF_ERROR(ParseString(&s));
        *out = Value(std::move(s));
        return absl::OkStatus();
      }
      case 't':
        return ParseLiteral("true", Value(true), out);
      case 'f':
        return ParseLiteral("false", Value(false), out);
      case 'n':
        return ParseLiteral("null", Value(), out);
      default:
        if (Peek() == '-' || IsDigit(Peek())) return ParseNumber(out);
        return Error(pos_, absl::StrCat("unexpected ", DescribeByte(Peek()),
                                        ", expected a value"));
    }
  }

  absl::Status ParseLiteral(std::string_view word, Value value, Value* out) {
    if (text_.substr(pos_, word.size()) != word) {
      return Error(pos_,
                   absl::StrCat("invalid literal, expected ", AbslView(word)));
    }
    pos_ += word.size();
    *out = std::move(value);
    return absl::OkStatus();
  }

  absl::Status ParseObject(int depth, Value* out) {
    ++pos_;  // '{'
    Value::Object members;
    absl::flat_hash_set<std::string> keys;
    SkipWhitespace();
    if (!AtEnd() && Peek() == '}') {
      ++pos_;
      *out = Value(std::move(members));
      return absl::OkStatus();
    }
    while (true) {
      SkipWhitespace();
      const size_t key_at = pos_;
      if (AtEnd() || Peek() != '"') {
        return Error(pos_, AtEnd() ? "unexpected end of input in an object"
                                   : "expected a string key in an object");
      }
      std::string key;
      RETURN_IF_ERROR(ParseString(&key));
      if (!keys.insert(key).second) {
        return Error(key_at, absl::StrCat("duplicate key ", Quote(key)));
      }
      SkipWhitespace();
      RETURN_IF_ERROR(Expect(':', "after an object key"));
      Value value;
      RETURN_IF_ERROR(ParseValue(depth, &value));
      members.emplace_back(std::move(key), std::move(value));
      SkipWhitespace();
      if (AtEnd()) return Error(pos_, "unexpected end of input in an object");
      if (Peek() == '}') break;
      RETURN_IF_ERROR(Expect(',', "or '}' after an object member"));
    }
    ++pos_;  // '}'
    *out = Value(std::move(members));
    return absl::OkStatus();
  }

  absl::Status ParseArray(int depth, Value* out) {
    ++pos_;  // '['
    Value::Array items;
    SkipWhitespace();
    if (!AtEnd() && Peek() == ']') {
      ++pos_;
      *out = Value(std::move(items));
      return absl::OkStatus();
    }
    while (true) {
      Value item;
      RETURN_IF_ERROR(ParseValue(depth, &item));
      items.push_back(std::move(item));
      SkipWhitespace();
      if (AtEnd()) return Error(pos_, "unexpected end of input in an array");
      if (Peek() == ']') break;
      RETURN_IF_ERROR(Expect(',', "or ']' after an array element"));
    }
    ++pos_;  // ']'
    *out = Value(std::move(items));
    return absl::OkStatus();
  }

  // Four hex digits at pos_, consumed.
  absl::Status ParseHex4(uint32_t* out) {
    if (text_.size() - pos_ < 4) {
      return Error(pos_, "unexpected end of input in a \\u escape");
    }
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const int digit = HexValue(text_[pos_ + i]);
      if (digit < 0) {
        return Error(pos_ + i, "expected 4 hex digits after \\u");
      }
      value = value * 16 + static_cast<uint32_t>(digit);
    }
    pos_ += 4;
    *out = value;
    return absl::OkStatus();
  }

  // After "\u": one code point, a surrogate pair taking two escapes.
  absl::Status ParseUnicodeEscape(size_t escape_at, std::string* out) {
    uint32_t cp = 0;
    RETURN_IF_ERROR(ParseHex4(&cp));
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return Error(escape_at, "unpaired low surrogate in a \\u escape");
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (text_.substr(pos_, 2) != "\\u") {
        return Error(escape_at, "high surrogate not followed by a \\u escape");
      }
      pos_ += 2;
      uint32_t low = 0;
      RETURN_IF_ERROR(ParseHex4(&low));
      if (low < 0xDC00 || low > 0xDFFF) {
        return Error(escape_at, "high surrogate not followed by a low one");
      }
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    AppendUtf8(cp, out);
    return absl::OkStatus();
  }

  absl::Status ParseString(std::string* out) {
    const size_t start = pos_;
    ++pos_;  // '"'
    while (true) {
      // Copy the run of bytes that need no attention in one go.
      const size_t run = pos_;
      while (!AtEnd()) {
        const unsigned char c = static_cast<unsigned char>(Peek());
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++pos_;
      }
      out->append(text_.substr(run, pos_ - run));
      if (AtEnd()) {
        return Error(
            pos_, absl::StrCat("unterminated string starting at byte ", start));
      }
      const unsigned char c = static_cast<unsigned char>(Peek());
      if (c == '"') {
        ++pos_;
        return absl::OkStatus();
      }
      if (c < 0x20) {
        return Error(pos_, absl::StrCat("unescaped control character ",
                                        DescribeByte(Peek()), " in a string"));
      }
      if (c >= 0x80) {
        const size_t length = Utf8SequenceLength(text_.substr(pos_));
        if (length == 0) return Error(pos_, "invalid UTF-8 in a string");
        out->append(text_.substr(pos_, length));
        pos_ += length;
        continue;
      }
      // A backslash.
      const size_t escape_at = pos_;
      ++pos_;
      if (AtEnd()) return Error(pos_, "unexpected end of input in an escape");
      const char e = Peek();
      ++pos_;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u':
          RETURN_IF_ERROR(ParseUnicodeEscape(escape_at, out));
          break;
        default:
          return Error(escape_at,
                       absl::StrCat("invalid escape \\", DescribeByte(e)));
      }
    }
  }

  // Consumes digits; false when there was none.
  bool SkipDigits() {
    const size_t from = pos_;
    while (!AtEnd() && IsDigit(Peek())) ++pos_;
    return pos_ > from;
  }

  absl::Status ParseNumber(Value* out) {
    const size_t start = pos_;
    if (Peek() == '-') ++pos_;
    if (AtEnd() || !IsDigit(Peek())) {
      return Error(pos_, "expected a digit in a number");
    }
    if (Peek() == '0') {
      ++pos_;
      if (!AtEnd() && IsDigit(Peek())) {
        return Error(start, "leading zero in a number");
      }
    } else {
      SkipDigits();
    }
    bool integral = true;
    if (!AtEnd() && Peek() == '.') {
      integral = false;
      ++pos_;
      if (!SkipDigits()) return Error(pos_, "expected a digit after '.'");
    }
    if (!AtEnd() && (Peek() == 'e' || Peek() == 'E')) {
      integral = false;
      ++pos_;
      if (!AtEnd() && (Peek() == '+' || Peek() == '-')) ++pos_;
      if (!SkipDigits()) return Error(pos_, "expected a digit in an exponent");
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    if (integral) {
      int64_t i;
      auto [end, ec] = std::from_chars(first, last, i);
      if (ec == std::errc() && end == last) {
        *out = Value(i);
        return absl::OkStatus();
      }
      // Too large for int64_t: still a number, just not an exact integer.
    }
    double d;
    auto [end, ec] = std::from_chars(first, last, d);
    if (ec == std::errc::result_out_of_range) {
      return Error(start, "number out of the range of a double");
    }
    if (ec != std::errc() || end != last) {
      return Error(start, "invalid number");
    }
    *out = Value(d);
    return absl::OkStatus();
  }

  const std::string_view text_;
  size_t pos_ = 0;
  const int max_depth_;
  const size_t max_values_;
  size_t values_ = 0;
};

}  // namespace

absl::StatusOr<Value> Parse(std::string_view text,
                            const ParseOptions& options) {
  return Parser(text, options).ParseDocument();
}

}  // namespace rnnserve::json
