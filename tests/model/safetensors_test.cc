#include "server/model/safetensors.h"

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/model/test_util.h"

namespace rnnserve::model {
namespace {

using ::testing::AllOf;
using testing::BuildSafetensors;
using ::testing::ElementsAre;
using testing::FakeTensor;
using testing::FloatBytes;
using ::testing::Gt;
using ::testing::HasSubstr;
using testing::SafetensorsBytes;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kSource[] = "models/x/model.safetensors";

Safetensors ParseOk(std::string_view bytes) {
  absl::StatusOr<Safetensors> file = ParseSafetensors(bytes, kSource);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *std::move(file) : Safetensors();
}

// The message of a parse that must fail with InvalidArgument naming the file.
std::string Reject(std::string_view bytes) {
  absl::StatusOr<Safetensors> file = ParseSafetensors(bytes, kSource);
  EXPECT_FALSE(file.ok()) << "accepted";
  if (file.ok()) return "";
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(file.status().message());
  EXPECT_THAT(message, HasSubstr(std::string(kSource) + ": "));
  return message;
}

// A file of one header `entries` text (inside the braces) and `data_size`
// zero bytes of data.
std::string OneHeader(std::string_view entries, size_t data_size) {
  // Appended piece by piece: g++ 12 at -O3 warns (-Wrestrict, a known false
  // positive) on "{" + std::string(...).
  std::string header = "{";
  header.append(entries);
  header.push_back('}');
  return SafetensorsBytes(header, std::string(data_size, '\0'));
}

// A file with one tensor "t" whose entry is `entry`, over `data_size` bytes.
std::string OneEntry(std::string_view entry, size_t data_size) {
  return OneHeader("\"t\":" + std::string(entry), data_size);
}

TEST(SafetensorsTest, ParsesTensorsInHeaderOrderWithViewsIntoTheFile) {
  const std::string bytes =
      BuildSafetensors({{"b", {2, 3}, {1, 2, 3, 4, 5, 6}}, {"a", {1}, {-7.5f}}},
                       {{"format", "pt"}, {"note", "x"}});
  Safetensors file = ParseOk(bytes);
  ASSERT_EQ(file.tensors.size(), 2u);
  const TensorView& b = file.tensors[0];
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(b.dtype, DType::kF32);
  EXPECT_THAT(b.shape, ElementsAre(2, 3));
  EXPECT_EQ(b.num_elements, 6);
  EXPECT_EQ(b.data, FloatBytes({1, 2, 3, 4, 5, 6}));
  // A view, not a copy: it lies inside the file's bytes.
  EXPECT_GE(b.data.data(), bytes.data());
  EXPECT_LE(b.data.data() + b.data.size(), bytes.data() + bytes.size());
  EXPECT_EQ(file.tensors[1].name, "a");
  EXPECT_EQ(file.tensors[1].data, FloatBytes({-7.5f}));
  EXPECT_EQ(file.metadata.size(), 2u);
  EXPECT_EQ(file.metadata["format"], "pt");
  EXPECT_EQ(file.metadata["note"], "x");
}

// The worked example of docs/model-format.md, section 6, byte for byte.
TEST(SafetensorsTest, ParsesTheSpecificationsWorkedExample) {
  const std::string header =
      R"({"rnn.weight_ih_l0":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},)"
      R"("rnn.weight_hh_l0":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]},)"
      R"("rnn.bias_ih_l0":{"dtype":"F32","shape":[2],"data_offsets":[24,32]},)"
      R"("rnn.bias_hh_l0":{"dtype":"F32","shape":[2],"data_offsets":[32,40]},)"
      R"("out.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[40,48]},)"
      R"("out.bias":{"dtype":"F32","shape":[1],"data_offsets":[48,52]}})"
      "  ";
  ASSERT_EQ(header.size(), 408u);
  const std::string data = FloatBytes(
      {0.5f, -1.0f, 0.25f, 0, 0, 0.5f, 0, 1, 0, -0.5f, 2, -1, 0.125f});
  const std::string bytes = SafetensorsBytes(header, data);
  ASSERT_EQ(bytes.size(), 468u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x98\x01\0\0\0\0\0\0", 8));
  EXPECT_EQ(bytes.substr(416, 4), std::string("\0\0\0\x3f", 4));  // 0.5
  Safetensors file = ParseOk(bytes);
  ASSERT_EQ(file.tensors.size(), 6u);
  EXPECT_EQ(file.tensors[1].name, "rnn.weight_hh_l0");
  EXPECT_EQ(file.tensors[1].data, FloatBytes({0.25f, 0, 0, 0.5f}));
  EXPECT_EQ(file.tensors[5].data, FloatBytes({0.125f}));
}

TEST(SafetensorsTest, KnowsEveryDtypeAndItsSize) {
  struct Case {
    const char* name;
    DType dtype;
    size_t size;
  };
  for (const Case& c : std::vector<Case>{{"F64", DType::kF64, 8},
                                         {"F32", DType::kF32, 4},
                                         {"F16", DType::kF16, 2},
                                         {"BF16", DType::kBF16, 2},
                                         {"I64", DType::kI64, 8},
                                         {"I32", DType::kI32, 4},
                                         {"I16", DType::kI16, 2},
                                         {"I8", DType::kI8, 1},
                                         {"U8", DType::kU8, 1},
                                         {"BOOL", DType::kBool, 1}}) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(DTypeName(c.dtype), c.name);
    EXPECT_EQ(DTypeSize(c.dtype), c.size);
    FakeTensor t =
        FakeTensor::Raw("t", c.name, {3}, std::string(3 * c.size, '\x01'));
    // The views point into `bytes`, which must outlive `file`.
    const std::string bytes = BuildSafetensors({t});
    Safetensors file = ParseOk(bytes);
    ASSERT_EQ(file.tensors.size(), 1u);
    EXPECT_EQ(file.tensors[0].dtype, c.dtype);
    EXPECT_EQ(file.tensors[0].data.size(), 3 * c.size);
  }
}

TEST(SafetensorsTest, AcceptsEmptyFilesScalarsAndZeroSizedTensors) {
  EXPECT_TRUE(ParseOk(SafetensorsBytes("{}", "")).tensors.empty());
  const std::string bytes = BuildSafetensors(
      {{"scalar", {}, {3.0f}}, {"empty", {0, 5}, {}}, {"v", {1}, {1.0f}}});
  Safetensors file = ParseOk(bytes);
  ASSERT_EQ(file.tensors.size(), 3u);
  EXPECT_TRUE(file.tensors[0].shape.empty());
  EXPECT_EQ(file.tensors[0].num_elements, 1);
  EXPECT_EQ(file.tensors[1].num_elements, 0);
  EXPECT_TRUE(file.tensors[1].data.empty());
}

TEST(SafetensorsTest, AcceptsPaddingAndAnyBufferOrder) {
  // The header lists "a" first but its bytes come second in the buffer.
  const std::string header =
      R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[3,5]},)"
      R"("b":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})"
      "       ";
  const std::string bytes = SafetensorsBytes(header, "bbbaa");
  Safetensors file = ParseOk(bytes);
  ASSERT_EQ(file.tensors.size(), 2u);
  EXPECT_EQ(file.tensors[0].data, "aa");
  EXPECT_EQ(file.tensors[1].data, "bbb");
}

TEST(SafetensorsTest, RejectsAFileShorterThanTheHeaderLength) {
  EXPECT_THAT(Reject(""), HasSubstr("file is 0 bytes, too short"));
  EXPECT_THAT(Reject(std::string(7, '\0')), HasSubstr("file is 7 bytes"));
}

TEST(SafetensorsTest, RejectsAHeaderLengthPastTheEndOfTheFile) {
  std::string bytes = SafetensorsBytes("{}", "");
  bytes[0] = 3;  // One byte more than there is.
  EXPECT_THAT(Reject(bytes),
              HasSubstr("header length 3 runs past the end of the 10-byte "
                        "file"));
}

TEST(SafetensorsTest, RejectsAHeaderAbove100MiBBeforeReadingIt) {
  std::string bytes(16, ' ');
  const uint64_t n = (uint64_t{100} << 20) + 1;
  std::memcpy(bytes.data(), &n, 8);
  EXPECT_THAT(Reject(bytes),
              HasSubstr("header length 104857601 exceeds the limit"));
  std::memset(bytes.data(), 0xff, 8);
  EXPECT_THAT(Reject(bytes), HasSubstr("header length 18446744073709551615"));
}

TEST(SafetensorsTest, RejectsMalformedHeaderJson) {
  EXPECT_THAT(Reject(SafetensorsBytes(R"({"t": )", "")),
              HasSubstr("header: malformed JSON at byte 6"));
  Reject(SafetensorsBytes(std::string("{}\0\0", 4),
                          ""));  // NUL padding is not spaces.
  Reject(SafetensorsBytes("{},", ""));
  EXPECT_THAT(Reject(SafetensorsBytes(R"({"t":1,"t":2})", "")),
              HasSubstr("duplicate key \"t\""));
}

TEST(SafetensorsTest, RejectsAHeaderThatIsNotAnObject) {
  EXPECT_THAT(Reject(SafetensorsBytes("[]", "")),
              HasSubstr("header must be a JSON object, got an array"));
  Reject(SafetensorsBytes("\"x\"", ""));
}

TEST(SafetensorsTest, RejectsEntriesWithoutExactlyTheThreeKeys) {
  EXPECT_THAT(Reject(OneEntry("[]", 0)),
              AllOf(HasSubstr("tensor \"t\": entry must be an object"),
                    HasSubstr("got an array")));
  EXPECT_THAT(Reject(OneEntry(R"({"shape":[1],"data_offsets":[0,4]})", 4)),
              HasSubstr("tensor \"t\": missing \"dtype\""));
  EXPECT_THAT(Reject(OneEntry(R"({"dtype":"F32","data_offsets":[0,4]})", 4)),
              HasSubstr("tensor \"t\": missing \"shape\""));
  EXPECT_THAT(Reject(OneEntry(R"({"dtype":"F32","shape":[1]})", 4)),
              HasSubstr("tensor \"t\": missing \"data_offsets\""));
  EXPECT_THAT(
      Reject(OneEntry(
          R"({"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1})", 4)),
      HasSubstr("tensor \"t\": unexpected key \"x\""));
}

TEST(SafetensorsTest, RejectsUnknownDtypes) {
  EXPECT_THAT(
      Reject(OneEntry(R"({"dtype":"F8","shape":[1],"data_offsets":[0,1]})", 1)),
      AllOf(HasSubstr("tensor \"t\": unknown dtype \"F8\""),
            HasSubstr("expected one of F64, F32")));
  Reject(OneEntry(R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})", 4));
  EXPECT_THAT(
      Reject(OneEntry(R"({"dtype":4,"shape":[1],"data_offsets":[0,4]})", 4)),
      HasSubstr("tensor \"t\": \"dtype\" must be a string, got 4"));
}

TEST(SafetensorsTest, RejectsBadShapes) {
  const auto entry = [](std::string_view shape) {
    return OneEntry(R"({"dtype":"U8","shape":)" + std::string(shape) +
                        R"(,"data_offsets":[0,4]})",
                    4);
  };
  EXPECT_THAT(Reject(entry("4")),
              HasSubstr("tensor \"t\": \"shape\" must be an array of "
                        "non-negative integers, got 4"));
  EXPECT_THAT(Reject(entry("[2,-2]")),
              HasSubstr("tensor \"t\": \"shape\"[1] must be an integer in "
                        "[0, 2^63), got -2"));
  EXPECT_THAT(Reject(entry("[2.0,2]")), HasSubstr("\"shape\"[0]"));
  EXPECT_THAT(Reject(entry("[4e0]")), HasSubstr("got 4.0"));
  EXPECT_THAT(Reject(entry("[\"4\"]")), HasSubstr("got \"4\""));
  EXPECT_THAT(Reject(entry("[null]")), HasSubstr("got null"));
  EXPECT_THAT(Reject(entry("[9223372036854775808]")),
              HasSubstr("\"shape\"[0] must be an integer in [0, 2^63)"));
}

TEST(SafetensorsTest, RejectsShapesWhoseSizeOverflows) {
  // 2^32 x 2^32 elements wrap to 0 in 64 bits; with offsets [0, 0] a
  // careless reader would accept it.
  EXPECT_THAT(
      Reject(OneEntry(
          R"({"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]})",
          0)),
      HasSubstr("tensor \"t\": shape [4294967296, 4294967296] has too many "
                "elements"));
  // 2^62 elements fit, their 2^64 bytes as F32 do not.
  EXPECT_THAT(
      Reject(OneEntry(
          R"({"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]})",
          0)),
      HasSubstr("overflows a 64-bit byte size"));
  // A zero dimension makes the count 0 whatever the others are.
  ParseOk(OneEntry(
      R"({"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]})",
      0));
}

TEST(SafetensorsTest, RejectsOffsetsThatAreNotTwoIntegers) {
  const auto entry = [](std::string_view offsets) {
    return OneEntry(R"({"dtype":"U8","shape":[4],"data_offsets":)" +
                        std::string(offsets) + "}",
                    4);
  };
  for (const char* bad :
       {"4", "[]", "[0]", "[0,4,4]", "[0,4.0]", "[\"0\",4]", "[-1,3]",
        "[0,9223372036854775808]", "{}", "[0,null]"}) {
    SCOPED_TRACE(bad);
    EXPECT_THAT(Reject(entry(bad)),
                HasSubstr("tensor \"t\": \"data_offsets\" must be [begin, "
                          "end], two non-negative integers"));
  }
  EXPECT_THAT(Reject(entry("[0,4.5]")), HasSubstr("got [0, 4.5]"));
}

TEST(SafetensorsTest, RejectsBeginAfterEnd) {
  EXPECT_THAT(
      Reject(OneEntry(R"({"dtype":"U8","shape":[0],"data_offsets":[4,0]})", 4)),
      HasSubstr("tensor \"t\": \"data_offsets\" [4, 0]: begin is "
                "after end"));
}

TEST(SafetensorsTest, RejectsOffsetsBeyondTheBuffer) {
  EXPECT_THAT(
      Reject(OneEntry(R"({"dtype":"U8","shape":[8],"data_offsets":[0,8]})", 4)),
      HasSubstr("tensor \"t\": \"data_offsets\" [0, 8] run past the "
                "end of the 4-byte data buffer"));
  Reject(OneEntry(
      R"({"dtype":"U8","shape":[0],"data_offsets":[9223372036854775807,9223372036854775807]})",
      4));
}

TEST(SafetensorsTest, RejectsALengthThatDiffersFromTheShape) {
  EXPECT_THAT(
      Reject(OneEntry(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})",
                      20)),
      HasSubstr("tensor \"t\": \"data_offsets\" [0, 20] hold 20 "
                "bytes, but F32 shape [2, 3] needs 24"));
  Reject(OneEntry(R"({"dtype":"F64","shape":[2],"data_offsets":[0,8]})", 8));
}

TEST(SafetensorsTest, RejectsOverlappingTensors) {
  EXPECT_THAT(
      Reject(OneHeader(R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]})",
                       6)),
      HasSubstr("tensor \"b\" (data_offsets [2, 6]) overlaps tensor \"a\" "
                "(data_offsets [0, 4])"));
  // The same bytes twice.
  Reject(OneHeader(R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                   R"("b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]})",
                   4));
  // An empty tensor inside another one.
  Reject(OneHeader(R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                   R"("b":{"dtype":"U8","shape":[0],"data_offsets":[2,2]})",
                   4));
}

TEST(SafetensorsTest, RejectsGapsBetweenTensors) {
  EXPECT_THAT(
      Reject(OneHeader(R"("a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                       R"("b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]})",
                       5)),
      HasSubstr("bytes [2, 3) of the data buffer, before tensor \"b\", "
                "belong to no tensor"));
  // A gap at the start.
  EXPECT_THAT(
      Reject(OneEntry(R"({"dtype":"U8","shape":[2],"data_offsets":[1,3]})", 3)),
      HasSubstr("bytes [0, 1)"));
}

TEST(SafetensorsTest, RejectsBytesAfterTheLastTensor) {
  EXPECT_THAT(
      Reject(OneEntry(R"({"dtype":"U8","shape":[2],"data_offsets":[0,2]})", 6)),
      HasSubstr("bytes [2, 6) at the end of the data buffer belong "
                "to no tensor"));
  EXPECT_THAT(Reject(SafetensorsBytes("{}", "x")), HasSubstr("bytes [0, 1)"));
}

TEST(SafetensorsTest, RejectsMetadataThatIsNotStringToString) {
  EXPECT_THAT(Reject(OneHeader(R"("__metadata__":[])", 0)),
              HasSubstr("\"__metadata__\" must be an object of strings, got "
                        "an array"));
  EXPECT_THAT(Reject(OneHeader(R"("__metadata__":{"a":"x","b":1})", 0)),
              HasSubstr("\"__metadata__\" value of \"b\" must be a string, "
                        "got 1"));
}

TEST(SafetensorsTest, MessagesQuoteHostileNamesSafely) {
  const std::string message = Reject(OneHeader(
      R"("a\n\"b":{"dtype":"X","shape":[0],"data_offsets":[0,0]})", 0));
  EXPECT_THAT(message, HasSubstr(R"(tensor "a\x0a\"b": unknown dtype)"));
}

TEST(SafetensorsTest, EveryTruncationIsRejectedWithoutACrash) {
  const std::string bytes = BuildSafetensors(
      {{"w", {2, 2}, {1, 2, 3, 4}}, {"b", {2}, {5, 6}}}, {{"k", "v"}});
  ParseOk(bytes);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(ParseSafetensors(bytes.substr(0, n), kSource).ok()) << n;
  }
}

TEST(SafetensorsTest, CorruptBytesNeverCrash) {
  const std::string bytes = BuildSafetensors(
      {{"w", {2, 2}, {1, 2, 3, 4}}, {"b", {2}, {5, 6}}}, {{"k", "v"}});
  // The only header bytes whose change can leave a valid file: the insides
  // of the strings that are free text (tensor names, metadata key and
  // value), changed to a character a JSON string may hold. Everything else
  // is structure, a dtype, a number or padding, and any change to it breaks
  // the file (a length, shape or offset that no longer adds up).
  const size_t w = bytes.find(R"("w":{)") + 1;
  const size_t b = bytes.find(R"("b":{)") + 1;
  const size_t k = bytes.find(R"("k":"v")") + 1;
  const size_t v = k + 4;
  ASSERT_EQ(bytes.substr(v, 1), "v");
  const std::string prefix = std::string(kSource) + ": ";
  int accepted = 0, unchanged = 0;
  // Every byte of the header set to a few telling values: under ASan this
  // shows any read past the input.
  for (size_t i = 0; i < bytes.size() - 24; ++i) {
    for (char c : {'\0', '"', '}', '9', '-', '\xff'}) {
      std::string corrupt = bytes;
      corrupt[i] = c;
      unchanged += corrupt == bytes;
      const bool free_text = i == w || i == b || i == k || i == v;
      const bool may_parse =
          corrupt == bytes || (free_text && (c == '}' || c == '9' || c == '-'));
      absl::StatusOr<Safetensors> file = ParseSafetensors(corrupt, kSource);
      if (!file.ok()) {
        EXPECT_FALSE(may_parse)
            << "byte " << i << " set to " << int{c}
            << " still forms a valid file, rejected: " << file.status();
        EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument)
            << file.status();
        // The file, then what is wrong with it.
        EXPECT_THAT(std::string(file.status().message()),
                    AllOf(StartsWith(prefix), SizeIs(Gt(prefix.size() + 8))))
            << "byte " << i;
        continue;
      }
      ++accepted;
      EXPECT_TRUE(may_parse)
          << "byte " << i << " set to " << int{c} << " accepted";
      if (!may_parse) continue;
      // What was accepted is what the bytes say: the one changed name, key
      // or value, the same tensors over the same data.
      const std::string changed(1, c);
      ASSERT_EQ(file->tensors.size(), 2u);
      EXPECT_EQ(file->tensors[0].name, i == w ? changed : "w");
      EXPECT_EQ(file->tensors[1].name, i == b ? changed : "b");
      EXPECT_EQ(file->metadata,
                (std::map<std::string, std::string>{
                    {i == k ? changed : "k", i == v ? changed : "v"}}));
      EXPECT_EQ(file->tensors[0].data, FloatBytes({1, 2, 3, 4}));
      EXPECT_EQ(file->tensors[1].data, FloatBytes({5, 6}));
    }
  }
  // The 4 free-text bytes x 3 characters, and the bytes set to what they
  // were.
  EXPECT_EQ(accepted, 4 * 3 + unchanged);
}

TEST(SafetensorsTest, FormatsShapes) {
  EXPECT_EQ(FormatShape(std::vector<int64_t>{}), "[]");
  EXPECT_EQ(FormatShape(std::vector<int64_t>{12, 3}), "[12, 3]");
  EXPECT_EQ(FormatShape(std::vector<int64_t>(20, 1)),
            "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, ...]");
}

}  // namespace
}  // namespace rnnserve::model
