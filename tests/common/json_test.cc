#include "server/common/json.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rnnserve::json {
namespace {

using ::testing::HasSubstr;

Value ParseOk(std::string_view text) {
  absl::StatusOr<Value> value = Parse(text);
  EXPECT_TRUE(value.ok()) << text << ": " << value.status();
  return value.ok() ? *std::move(value) : Value();
}

// The message of a parse that must fail, with its code checked.
std::string ParseError(std::string_view text,
                       const ParseOptions& options = {}) {
  absl::StatusOr<Value> value = Parse(text, options);
  EXPECT_FALSE(value.ok()) << "accepted: " << text;
  if (value.ok()) return "";
  EXPECT_EQ(value.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(value.status().message());
}

TEST(JsonTest, ParsesLiterals) {
  EXPECT_TRUE(ParseOk("null").is_null());
  EXPECT_TRUE(ParseOk("true").bool_value());
  Value f = ParseOk("false");
  EXPECT_TRUE(f.is_bool());
  EXPECT_FALSE(f.bool_value());
}

TEST(JsonTest, ParsesNumbers) {
  EXPECT_EQ(ParseOk("0").integer(), 0);
  EXPECT_EQ(ParseOk("-0").integer(), 0);
  EXPECT_EQ(ParseOk("123").integer(), 123);
  EXPECT_EQ(ParseOk("-45").integer(), -45);
  EXPECT_DOUBLE_EQ(ParseOk("1.5").number(), 1.5);
  EXPECT_DOUBLE_EQ(ParseOk("-1.25e-2").number(), -0.0125);
  EXPECT_DOUBLE_EQ(ParseOk("1E+3").number(), 1000.0);
  EXPECT_DOUBLE_EQ(ParseOk("2e3").number(), 2000.0);
  EXPECT_DOUBLE_EQ(ParseOk("0.5e0").number(), 0.5);
  EXPECT_DOUBLE_EQ(ParseOk("123").number(), 123.0);
}

TEST(JsonTest, IntegerIsExactOnlyForIntegerLiterals) {
  EXPECT_EQ(ParseOk("3.0").integer(), std::nullopt);
  EXPECT_EQ(ParseOk("1e2").integer(), std::nullopt);
  EXPECT_EQ(ParseOk("9223372036854775807").integer(), INT64_MAX);
  EXPECT_EQ(ParseOk("-9223372036854775808").integer(), INT64_MIN);
  // One past int64_t: a number still, never a wrapped or rounded integer.
  Value big = ParseOk("9223372036854775808");
  EXPECT_TRUE(big.is_number());
  EXPECT_EQ(big.integer(), std::nullopt);
  EXPECT_DOUBLE_EQ(big.number(), 9223372036854775808.0);
  EXPECT_EQ(ParseOk("\"3\"").integer(), std::nullopt);
  EXPECT_EQ(ParseOk("true").integer(), std::nullopt);
}

TEST(JsonTest, RejectsNonRfcNumbers) {
  EXPECT_THAT(ParseError("01"), HasSubstr("leading zero"));
  EXPECT_THAT(ParseError("-01"), HasSubstr("leading zero"));
  EXPECT_THAT(ParseError("00"), HasSubstr("leading zero"));
  EXPECT_THAT(ParseError("1."), HasSubstr("after '.'"));
  EXPECT_THAT(ParseError("1.e5"), HasSubstr("after '.'"));
  EXPECT_THAT(ParseError("1e"), HasSubstr("exponent"));
  EXPECT_THAT(ParseError("1e+"), HasSubstr("exponent"));
  EXPECT_THAT(ParseError("-"), HasSubstr("expected a digit"));
  EXPECT_THAT(ParseError("-a"), HasSubstr("expected a digit"));
  ParseError(".5");
  ParseError("+1");
  ParseError("0x10");
  ParseError("NaN");
  ParseError("Infinity");
  ParseError("-Infinity");
  EXPECT_THAT(ParseError("1e400"), HasSubstr("out of the range"));
  EXPECT_THAT(ParseError("-1e400"), HasSubstr("out of the range"));
}

TEST(JsonTest, ParsesStringsWithEveryEscape) {
  EXPECT_EQ(ParseOk(R"("a\"b\\c\/d\be\ff\ng\rh\ti")").string(),
            "a\"b\\c/d\be\ff\ng\rh\ti");
  EXPECT_EQ(ParseOk(R"("\u0041\u00e9\u20AC")").string(),
            "A\xC3\xA9\xE2\x82\xAC");
  // A surrogate pair becomes one 4-byte UTF-8 sequence (U+1F600).
  EXPECT_EQ(ParseOk(R"("\ud83d\ude00")").string(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(ParseOk(R"("\uDBFF\uDFFF")").string(), "\xF4\x8F\xBF\xBF");
  // NUL is a character like any other.
  EXPECT_EQ(ParseOk(R"("a\u0000b")").string(), std::string("a\0b", 3));
  EXPECT_EQ(ParseOk("\"\"").string(), "");
}

TEST(JsonTest, AcceptsValidRawUtf8) {
  const std::string text = "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"";
  EXPECT_EQ(ParseOk(text).string(), text.substr(1, text.size() - 2));
}

TEST(JsonTest, RejectsBadStrings) {
  EXPECT_THAT(ParseError("\"abc"), HasSubstr("unterminated string"));
  EXPECT_THAT(ParseError("\"a\nb\""), HasSubstr("control character"));
  EXPECT_THAT(ParseError("\"a\tb\""), HasSubstr("control character"));
  EXPECT_THAT(ParseError(std::string("\"a\0b\"", 5)),
              HasSubstr("control character"));
  EXPECT_THAT(ParseError(R"("\x41")"), HasSubstr("invalid escape"));
  EXPECT_THAT(ParseError(R"("\'")"), HasSubstr("invalid escape"));
  EXPECT_THAT(ParseError(R"("\u12G4")"), HasSubstr("hex digits"));
  EXPECT_THAT(ParseError(R"("\u12)"), HasSubstr("end of input"));
  EXPECT_THAT(ParseError("\"\\"), HasSubstr("end of input"));
  EXPECT_THAT(ParseError(R"("\ud83d")"), HasSubstr("high surrogate"));
  EXPECT_THAT(ParseError(R"("\ud83dx")"), HasSubstr("high surrogate"));
  EXPECT_THAT(ParseError(R"("\ud83d\u0041")"), HasSubstr("high surrogate"));
  EXPECT_THAT(ParseError(R"("\ude00")"), HasSubstr("low surrogate"));
  ParseError("'single'");
}

TEST(JsonTest, RejectsInvalidUtf8) {
  for (const char* bad : {
           "\"\x80\"",              // A lone continuation byte.
           "\"\xC0\x80\"",          // Overlong NUL.
           "\"\xC1\xBF\"",          // Overlong.
           "\"\xE0\x80\xAF\"",      // Overlong 3-byte form.
           "\"\xED\xA0\x80\"",      // An encoded surrogate.
           "\"\xF0\x8F\xBF\xBF\"",  // Overlong 4-byte form.
           "\"\xF4\x90\x80\x80\"",  // Above U+10FFFF.
           "\"\xF5\x80\x80\x80\"",  // Never a lead byte.
           "\"\xFF\"",
           "\"\xC3\"",      // Cut short by the closing quote.
           "\"\xE2\x82\"",  // Cut short.
           "\"\xE2\x82",    // Cut short by the end of input.
       }) {
    EXPECT_THAT(ParseError(bad), HasSubstr("invalid UTF-8")) << bad;
  }
}

TEST(JsonTest, ParsesArraysAndObjectsInOrder) {
  Value v = ParseOk(R"({"z": [1, "two", null, [], {}], "a": {"b": false}})");
  ASSERT_TRUE(v.is_object());
  ASSERT_EQ(v.object().size(), 2u);
  EXPECT_EQ(v.object()[0].first, "z");
  EXPECT_EQ(v.object()[1].first, "a");
  const Value* z = v.Find("z");
  ASSERT_NE(z, nullptr);
  ASSERT_EQ(z->array().size(), 5u);
  EXPECT_EQ(z->array()[0].integer(), 1);
  EXPECT_EQ(z->array()[1].string(), "two");
  EXPECT_TRUE(z->array()[2].is_null());
  EXPECT_TRUE(z->array()[3].is_array());
  EXPECT_TRUE(z->array()[4].is_object());
  ASSERT_NE(v.Find("a"), nullptr);
  EXPECT_FALSE(v.Find("a")->Find("b")->bool_value());
  EXPECT_EQ(v.Find("missing"), nullptr);
  EXPECT_EQ(z->Find("z"), nullptr);  // Not an object.
}

TEST(JsonTest, AcceptsAllFourWhitespaceBytes) {
  Value v = ParseOk(" \t\n\r{ \"a\" \n:\t[ 1 ,\r2 ] } \n\t\r ");
  EXPECT_EQ(v.Find("a")->array().size(), 2u);
}

TEST(JsonTest, ParsesScalarDocuments) {
  EXPECT_EQ(ParseOk(" \"x\" ").string(), "x");
  EXPECT_EQ(ParseOk("7").integer(), 7);
}

TEST(JsonTest, RejectsDuplicateKeysWithOffset) {
  std::string message = ParseError(R"({"a": 1, "b": 2, "a": 3})");
  EXPECT_THAT(message, HasSubstr("duplicate key \"a\""));
  EXPECT_THAT(message, HasSubstr("at byte 17"));
  // Keys equal after unescaping are the same key.
  EXPECT_THAT(ParseError(R"({"a": 1, "\u0061": 2})"),
              HasSubstr("duplicate key"));
  // The same key in different objects is fine.
  ParseOk(R"({"a": {"a": 1}, "b": {"a": 2}})");
}

TEST(JsonTest, RejectsTrailingCommasAndMissingSeparators) {
  EXPECT_THAT(ParseError(R"({"a": 1,})"), HasSubstr("at byte 8"));
  EXPECT_THAT(ParseError("[1, 2,]"), HasSubstr("at byte 6"));
  ParseError("[,]");
  ParseError("{,}");
  EXPECT_THAT(ParseError("[1 2]"), HasSubstr("expected ','"));
  EXPECT_THAT(ParseError(R"({"a" 1})"), HasSubstr("expected ':'"));
  EXPECT_THAT(ParseError(R"({"a": 1 "b": 2})"), HasSubstr("expected ','"));
  EXPECT_THAT(ParseError("{1: 2}"), HasSubstr("string key"));
  EXPECT_THAT(ParseError("{a: 2}"), HasSubstr("string key"));
  ParseError("[1}");
  ParseError(R"({"a": 1])");
}

TEST(JsonTest, RejectsCommentsAndGarbage) {
  ParseError("// c\n1");
  ParseError("/* c */ 1");
  EXPECT_THAT(ParseError("[1] // c"), HasSubstr("after the JSON value"));
  EXPECT_THAT(ParseError("1 2"), HasSubstr("at byte 2"));
  EXPECT_THAT(ParseError(""), HasSubstr("end of input"));
  EXPECT_THAT(ParseError("   "), HasSubstr("end of input"));
  ParseError("\xEF\xBB\xBF{}");  // A byte-order mark.
  ParseError("tru");
  ParseError("nul");
  ParseError("True");
  ParseError("undefined");
  ParseError("\x01");
}

TEST(JsonTest, ErrorsGiveTheByteOffset) {
  EXPECT_THAT(ParseError(R"({"a": tru})"),
              HasSubstr("malformed JSON at byte 6: "));
  EXPECT_THAT(ParseError("[1, 2, x]"), HasSubstr("at byte 7"));
  EXPECT_THAT(ParseError("[1, 2"), HasSubstr("at byte 5"));
}

TEST(JsonTest, EveryTruncationIsAnErrorNotACrash) {
  const std::string text =
      R"({"a": [1, -2.5e3, "x\u00e9\ud83d\ude00", true, null], "b": {}})";
  ParseOk(text);
  for (size_t n = 0; n < text.size(); ++n) {
    EXPECT_FALSE(Parse(text.substr(0, n)).ok()) << text.substr(0, n);
  }
}

TEST(JsonTest, LimitsNestingDepth) {
  const auto nested = [](int depth) {
    return std::string(depth, '[') + std::string(depth, ']');
  };
  ParseOk(nested(64));
  EXPECT_THAT(ParseError(nested(65)), HasSubstr("nested deeper than 64"));
  ParseOk(std::string(64, '[') + "1" + std::string(64, ']'));
  std::string objects;
  for (int i = 0; i < 65; ++i) objects += "{\"a\":";
  objects += "1" + std::string(65, '}');
  EXPECT_THAT(ParseError(objects), HasSubstr("nested deeper than 64"));

  ParseOptions shallow;
  shallow.max_depth = 2;
  EXPECT_TRUE(Parse("[[1]]", shallow).ok());
  EXPECT_THAT(ParseError("[[[1]]]", shallow), HasSubstr("deeper than 2"));
  ParseOptions none;
  none.max_depth = 0;
  EXPECT_TRUE(Parse("1", none).ok());
  ParseError("[]", none);
}

TEST(JsonTest, DepthLimitIsCappedSoTheStackIsSafe) {
  ParseOptions deep;
  deep.max_depth = 1 << 30;
  const std::string text(100000, '[');
  EXPECT_THAT(ParseError(text, deep), HasSubstr("nested deeper than 512"));
}

TEST(JsonTest, LimitsValueCount) {
  ParseOptions options;
  options.max_values = 4;
  EXPECT_TRUE(Parse("[1, 2, 3]", options).ok());  // 4 values with the array.
  EXPECT_THAT(ParseError("[1, 2, 3, 4]", options), HasSubstr("more than 4"));
  EXPECT_THAT(ParseError(R"({"a": [[], {}, 1]})", options),
              HasSubstr("more than 4"));
}

TEST(JsonTest, AccessorsOfAnotherTypeGiveEmptyValues) {
  Value n = ParseOk("1");
  EXPECT_FALSE(n.bool_value());
  EXPECT_EQ(n.string(), "");
  EXPECT_TRUE(n.array().empty());
  EXPECT_TRUE(n.object().empty());
  EXPECT_EQ(ParseOk("\"1\"").number(), 0.0);
}

TEST(JsonTest, TypeNames) {
  EXPECT_EQ(TypeName(ParseOk("null").type()), "null");
  EXPECT_EQ(TypeName(ParseOk("true").type()), "a boolean");
  EXPECT_EQ(TypeName(ParseOk("1").type()), "a number");
  EXPECT_EQ(TypeName(ParseOk("\"\"").type()), "a string");
  EXPECT_EQ(TypeName(ParseOk("[]").type()), "an array");
  EXPECT_EQ(TypeName(ParseOk("{}").type()), "an object");
}

TEST(JsonTest, QuoteEscapesAndShortens) {
  EXPECT_EQ(Quote("abc"), "\"abc\"");
  EXPECT_EQ(Quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(Quote(std::string("a\0\n\x7f", 4)), "\"a\\x00\\x0a\\x7f\"");
  EXPECT_EQ(Quote("abcdef", 3), "\"abc\"...");
  EXPECT_EQ(Quote("caf\xC3\xA9"), "\"caf\xC3\xA9\"");
}

TEST(JsonTest, DescribeRendersScalarsAndNamesContainers) {
  EXPECT_EQ(Describe(ParseOk("null")), "null");
  EXPECT_EQ(Describe(ParseOk("true")), "true");
  EXPECT_EQ(Describe(ParseOk("-12")), "-12");
  EXPECT_EQ(Describe(ParseOk("1.5")), "1.5");
  // A number written with a fraction or exponent never reads as an integer.
  EXPECT_EQ(Describe(ParseOk("1e2")), "100.0");
  EXPECT_EQ(Describe(ParseOk("64.0")), "64.0");
  EXPECT_EQ(Describe(ParseOk("1e30")), "1e+30");
  EXPECT_EQ(Describe(ParseOk("9223372036854775808")), "9223372036854775808.0");
  EXPECT_EQ(Describe(ParseOk("\"abc\"")), "\"abc\"");
  EXPECT_EQ(Describe(ParseOk("[1]")), "an array");
  EXPECT_EQ(Describe(ParseOk("{}")), "an object");
}

TEST(JsonTest, BuildsValuesDirectly) {
  EXPECT_TRUE(Value("x").is_string());
  EXPECT_EQ(Value(int64_t{5}).integer(), 5);
  EXPECT_EQ(Value(5.0).integer(), std::nullopt);
  EXPECT_TRUE(Value(Value::Array{Value(true)}).array()[0].bool_value());
}

}  // namespace
}  // namespace rnnserve::json
