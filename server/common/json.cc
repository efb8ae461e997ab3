// The document tree and the message helpers; the parser is in
// json_parser.cc.
#include "server/common/json.h"

#include <charconv>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "server/common/string_view.h"

namespace rnnserve::json {

std::string_view TypeName(Type type) {
  switch (type) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return "a boolean";
    case Type::kNumber:
      return "a number";
    case Type::kString:
      return "a string";
    case Type::kArray:
      return "an array";
    case Type::kObject:
      return "an object";
  }
  return "an unknown type";
}

bool Value::bool_value() const {
  const bool* b = std::get_if<bool>(&data_);
  return b != nullptr && *b;
}

double Value::number() const {
  const Number* n = std::get_if<Number>(&data_);
  return n == nullptr ? 0.0 : n->value;
}

const std::string& Value::string() const {
  static const std::string* const kEmpty = new std::string();
  const std::string* s = std::get_if<std::string>(&data_);
  return s == nullptr ? *kEmpty : *s;
}

const Value::Array& Value::array() const {
  static const Array* const kEmpty = new Array();
  const Array* a = std::get_if<Array>(&data_);
  return a == nullptr ? *kEmpty : *a;
}

const Value::Object& Value::object() const {
  static const Object* const kEmpty = new Object();
  const Object* o = std::get_if<Object>(&data_);
  return o == nullptr ? *kEmpty : *o;
}

std::optional<int64_t> Value::integer() const {
  const Number* n = std::get_if<Number>(&data_);
  if (n == nullptr || !n->is_integer) return std::nullopt;
  return n->integer;
}

const Value* Value::Find(std::string_view key) const {
  const Object* o = std::get_if<Object>(&data_);
  if (o == nullptr) return nullptr;
  for (const Member& member : *o) {
    if (member.first == key) return &member.second;
  }
  return nullptr;
}

std::string Quote(std::string_view s, size_t max_bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  size_t i = 0;
  for (; i < s.size() && i < max_bytes; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      // Bytes of a UTF-8 sequence pass through, so that non-ASCII names
      // stay readable; a sequence cut at max_bytes only ends the message.
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (i < s.size()) out += "...";
  return out;
}

std::string Describe(const Value& value) {
  switch (value.type()) {
    case Type::kNull:
      return "null";
    case Type::kBool:
      return value.bool_value() ? "true" : "false";
    case Type::kNumber: {
      if (std::optional<int64_t> i = value.integer()) return absl::StrCat(*i);
      // The shortest text that reads back as the same double.
      char buffer[32];
      auto [end, ec] =
          std::to_chars(buffer, buffer + sizeof(buffer), value.number());
      if (ec != std::errc()) return "a number";
      std::string text(buffer, end);
      // 64.0 must not read as the integer 64 in "must be an integer, got".
      if (text.find_first_of(".en") == std::string::npos) text += ".0";
      return text;
    }
    case Type::kString:
      return Quote(value.string());
    case Type::kArray:
    case Type::kObject:
      return std::string(TypeName(value.type()));
  }
  return "an unknown value";
}

absl::StatusOr<Value> ParseObject(std::string_view text,
                                  std::string_view source) {
  absl::StatusOr<Value> root = Parse(text);
  if (!root.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(source), ": ", root.status().message()));
  }
  if (!root->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        AbslView(source), ": must be a JSON object, got ", Describe(*root)));
  }
  return root;
}

}  // namespace rnnserve::json
