// A small, strict JSON (RFC 8259) reader: text in, a document tree out.
//
// It exists because the model files (config.json, the safetensors header)
// must be read without a third-party JSON library, and because everything it
// reads may be hostile: it never reads past its input, bounds its recursion,
// and reports the byte offset of the first error.
//
// Strict means: no comments, no trailing commas, no leading zeros, no NaN or
// Infinity, no raw control characters in strings, no invalid UTF-8, no lone
// surrogates, no duplicate keys in an object, nothing but whitespace after
// the value.
#ifndef RNNSERVE_SERVER_COMMON_JSON_H_
#define RNNSERVE_SERVER_COMMON_JSON_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace rnnserve::json {

enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

// "null", "a boolean", "a number", "a string", "an array", "an object": for
// messages such as `"cell" must be a string, got a number`.
std::string_view TypeName(Type type);

// One JSON value. Objects keep their members in document order. A value is
// plain data: it may be read from any number of threads at once.
class Value {
 public:
  using Array = std::vector<Value>;
  using Member = std::pair<std::string, Value>;
  using Object = std::vector<Member>;

  Value() = default;  // null
  explicit Value(bool b) : data_(b) {}
  // A number that was not written as an integer literal.
  explicit Value(double d) : data_(Number{d, 0, false}) {}
  // An integer literal that fits in int64_t; number() is its nearest double.
  explicit Value(int64_t i) : data_(Number{static_cast<double>(i), i, true}) {}
  explicit Value(std::string s) : data_(std::move(s)) {}
  // Without it a string literal would convert to bool.
  explicit Value(const char* s) : data_(std::string(s)) {}
  explicit Value(Array a) : data_(std::move(a)) {}
  explicit Value(Object o) : data_(std::move(o)) {}

  Type type() const { return static_cast<Type>(data_.index()); }
  bool is_null() const { return type() == Type::kNull; }
  bool is_bool() const { return type() == Type::kBool; }
  bool is_number() const { return type() == Type::kNumber; }
  bool is_string() const { return type() == Type::kString; }
  bool is_array() const { return type() == Type::kArray; }
  bool is_object() const { return type() == Type::kObject; }

  // The value as its type. Called on a value of another type, each returns
  // false, 0, or an empty string, array or object: a caller that forgot to
  // check the type gets a wrong answer that its tests will show, never a
  // crash on hostile input.
  bool bool_value() const;
  double number() const;
  const std::string& string() const;
  const Array& array() const;
  const Object& object() const;

  // The exact value of a number written as an integer literal (no fraction,
  // no exponent) within int64_t's range; nullopt for any other value. So
  // 3 gives 3, while 3.0, 3e0, 1e30 and 2^63 give nullopt: a size or an
  // offset must be written as an integer, and is never rounded.
  std::optional<int64_t> integer() const;

  // The member named `key` of an object, or nullptr (also for a non-object).
  // Linear in the number of members.
  const Value* Find(std::string_view key) const;

 private:
  struct Number {
    double value;
    int64_t integer;
    bool is_integer;
  };
  // Alternatives in the order of Type, so that index() is the type.
  std::variant<std::monostate, bool, Number, std::string, Array, Object> data_;
};

struct ParseOptions {
  // Arrays and objects nested deeper than this are an error; the parser
  // recurses once per level, so this also bounds its stack use (values above
  // 512 are taken as 512).
  int max_depth = 64;
  // Values (of any type, containers included) beyond this are an error: it
  // bounds the memory a hostile document can make the tree take, which is a
  // few tens of bytes per value whatever the text's size.
  size_t max_values = size_t{1} << 24;
};

// Parses one JSON text. On error returns InvalidArgument with a message
// "malformed JSON at byte <offset>: <what>", the offset counted from the
// start of `text`. The result does not refer to `text`.
absl::StatusOr<Value> Parse(std::string_view text,
                            const ParseOptions& options = {});

// Parses a file's JSON text that must be one object: errors say
// "<source>: " and what is wrong (malformed, or another kind of value).
absl::StatusOr<Value> ParseObject(std::string_view text,
                                  std::string_view source);

// `s` in double quotes, with quotes, backslashes and control bytes escaped,
// shortened to about `max_bytes` with "..." if longer: safe to put any
// untrusted string into a message.
std::string Quote(std::string_view s, size_t max_bytes = 80);

// A short rendering of `value` for messages: scalars as JSON (strings
// quoted as by Quote), containers as "an array" or "an object".
std::string Describe(const Value& value);

}  // namespace rnnserve::json

#endif  // RNNSERVE_SERVER_COMMON_JSON_H_
