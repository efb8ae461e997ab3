// Fuzzes the JSON reader with any bytes, under its default limits and under
// tight ones, and checks that an accepted document keeps within them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "server/common/json.h"

namespace {

using rnnserve::json::Value;

// Counts the values of `value` and returns the deepest nesting of arrays and
// objects (0 for a scalar).
int Walk(const Value& value, size_t* count) {
  ++*count;
  int deepest = 0;
  if (value.is_array()) {
    for (const Value& element : value.array()) {
      const int depth = Walk(element, count);
      if (depth > deepest) deepest = depth;
    }
    return deepest + 1;
  }
  if (value.is_object()) {
    for (const Value::Member& member : value.object()) {
      FUZZ_CHECK(value.Find(member.first) != nullptr);
      const int depth = Walk(member.second, count);
      if (depth > deepest) deepest = depth;
    }
    return deepest + 1;
  }
  // Every accessor answers on every type without failing.
  (void)value.bool_value();
  (void)value.number();
  (void)value.string();
  (void)value.integer();
  return 0;
}

void ParseWithin(std::string_view text,
                 const rnnserve::json::ParseOptions& options) {
  absl::StatusOr<Value> value = rnnserve::json::Parse(text, options);
  if (!value.ok()) {
    FUZZ_CHECK(value.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  size_t count = 0;
  FUZZ_CHECK(Walk(*value, &count) <= options.max_depth);
  FUZZ_CHECK(count <= options.max_values);
  (void)rnnserve::json::Describe(*value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ParseWithin(text, {});
  ParseWithin(text, {.max_depth = 3, .max_values = 16});
  (void)rnnserve::json::Quote(text);
  return 0;
}
