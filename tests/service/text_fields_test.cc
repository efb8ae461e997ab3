// The scan of a request body's text fields before it is parsed: text that
// is not UTF-8 is refused naming the field, bytes that are no message are
// refused naming the message, everything else is skipped, large fields
// without being read through.
#include "server/service/text_fields.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/wire_format_lite.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "inference/grpc_predict_v2.pb.h"
#include "rnnserve/v1/inference.pb.h"

namespace rnnserve::service {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormatLite;

// Field `number` as a length-delimited field holding `value`, whatever the
// field's declared type: how a client's bytes reach the server.
std::string LengthDelimited(int number, const std::string& value) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    WireFormatLite::WriteBytes(number, value, &coded);
  }
  return out;
}

absl::Status Check(const std::string& bytes, const Descriptor& message) {
  // Small blocks, so that fields straddle them.
  google::protobuf::io::ArrayInputStream input(
      bytes.data(), static_cast<int>(bytes.size()), /*block_size=*/7);
  return CheckTextFields(input, message);
}

v1::RegressRequest ValidChunk() {
  v1::RegressRequest request;
  request.set_model("sine_rnn");
  request.set_session_token("t\xc3\xa8st");  // "tèst"
  request.set_steps(3);
  request.mutable_values()->Resize(3, 0.5f);
  request.set_end_session(true);
  return request;
}

const std::vector<std::string>& NotUtf8() {
  static const auto* const kNotUtf8 =
      new std::vector<std::string>{"\xff",              // Never in UTF-8.
                                   "abc\xc3",           // Cut short.
                                   "\xed\xa0\x80",      // An encoded surrogate.
                                   "\xc0\xaf",          // An overlong '/'.
                                   "\xf4\x90\x80\x80",  // Above U+10FFFF.
                                   std::string("a\0\xfe", 3)};
  return *kNotUtf8;
}

TEST(TextFieldsTest, AcceptsWellFormedRequests) {
  v1::ClassifyRequest classify;
  classify.set_model("fashion_lstm");
  classify.set_top_k(3);
  v1::Sequence* sequence = classify.add_sequences();
  sequence->set_steps(28);
  sequence->mutable_values()->Resize(784, 0.25f);
  EXPECT_TRUE(
      Check(classify.SerializeAsString(), *classify.GetDescriptor()).ok());
  EXPECT_TRUE(
      Check(ValidChunk().SerializeAsString(), *v1::RegressRequest::descriptor())
          .ok());
  EXPECT_TRUE(Check("", *v1::ListModelsRequest::descriptor()).ok());
  // A field of a later version of the message, and a text field number
  // sent with another wire type: both left to the parse, which keeps them
  // as unknown fields.
  EXPECT_TRUE(
      Check("\xa0\x06\x01\x08\x05", *v1::GetModelRequest::descriptor()).ok());
}

TEST(TextFieldsTest, RefusesEachTextFieldThatIsNotUtf8ByName) {
  for (const Descriptor* message :
       {v1::ClassifyRequest::descriptor(), v1::RegressRequest::descriptor(),
        v1::GetModelRequest::descriptor()}) {
    int text_fields = 0;
    for (int i = 0; i < message->field_count(); ++i) {
      const FieldDescriptor* field = message->field(i);
      if (field->type() != FieldDescriptor::TYPE_STRING) continue;
      ++text_fields;
      for (const std::string& bad : NotUtf8()) {
        // After a valid chunk's fields, so that the scan gets past them;
        // the last occurrence of a field is the one a parse keeps, but
        // every one is checked.
        const std::string bytes = ValidChunk().SerializeAsString() +
                                  LengthDelimited(field->number(), bad);
        const absl::Status status = Check(bytes, *message);
        EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
            << message->name() << "." << field->name();
        EXPECT_EQ(status.message(), field->name() + ": not valid UTF-8");
        // Before a valid occurrence of the same field too.
        EXPECT_EQ(Check(LengthDelimited(field->number(), bad) +
                            LengthDelimited(field->number(), "ok"),
                        *message)
                      .message(),
                  field->name() + ": not valid UTF-8");
      }
    }
    EXPECT_GT(text_fields, 0) << message->name();
  }
  // Which of model and session_token is bad is told apart.
  v1::RegressRequest request = ValidChunk();
  EXPECT_EQ(Check(request.SerializeAsString() + LengthDelimited(2, "\xff"),
                  *request.GetDescriptor())
                .message(),
            "session_token: not valid UTF-8");
  EXPECT_EQ(Check(LengthDelimited(1, "\xff") + request.SerializeAsString(),
                  *request.GetDescriptor())
                .message(),
            "model: not valid UTF-8");
}

TEST(TextFieldsTest, RefusesBytesThatAreNoMessageNamingIt) {
  const std::string valid = ValidChunk().SerializeAsString();
  const std::vector<std::string> garbage = {
      // Truncated: in the middle of the packed values, and of the model.
      valid.substr(0, valid.size() - 5), valid.substr(0, 4),
      // A varint, then a length-delimited field longer than the body.
      std::string("\x08\x96\x01\x12\x7f\xff\xff", 7),
      std::string("\x00", 1),      // Tag 0.
      "\x02\x00",                  // Field number 0.
      "\x0f",                      // Wire type 7.
      "\x0c",                      // An end-group with no group.
      "\x18\xff\xff",              // A varint cut short.
      "\x0a\xff\xff\xff\xff\x0f",  // A text field of 2^32 - 1 bytes.
      "\x0a\x80\x80\x80\x80\x08",  // ... of 2^31 bytes.
      "\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  // A runaway varint.
  };
  for (const std::string& bytes : garbage) {
    const absl::Status status = Check(bytes, *v1::RegressRequest::descriptor());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(status.message(),
              "request: not a valid rnnserve.v1.RegressRequest message");
    // What the scan refuses, the parse refuses too.
    v1::RegressRequest parsed;
    EXPECT_FALSE(parsed.ParseFromString(bytes));
  }
}

// A ZeroCopyInputStream that counts the bytes it hands out: what a reader
// skips with Skip() is never handed out.
class CountingStream final : public google::protobuf::io::ZeroCopyInputStream {
 public:
  explicit CountingStream(std::string bytes)
      : bytes_(std::move(bytes)),
        inner_(bytes_.data(), static_cast<int>(bytes_.size()), 4096) {}

  bool Next(const void** data, int* size) override {
    if (!inner_.Next(data, size)) return false;
    handed_out_ += *size;
    return true;
  }
  void BackUp(int count) override {
    inner_.BackUp(count);
    handed_out_ -= count;
  }
  bool Skip(int count) override { return inner_.Skip(count); }
  int64_t ByteCount() const override { return inner_.ByteCount(); }

  int64_t handed_out() const { return handed_out_; }

 private:
  const std::string bytes_;  // Before inner_, which points into it.
  google::protobuf::io::ArrayInputStream inner_;
  int64_t handed_out_ = 0;
};

TEST(TextFieldsTest, SkipsALargePackedFieldWithoutReadingIt) {
  v1::RegressRequest request;
  request.set_steps(4 << 20);
  request.mutable_values()->Resize(4 << 20, 1.5f);  // 16 MiB packed.
  const std::string values = request.SerializeAsString();
  {
    // The scan gets past the values to a text field after them.
    CountingStream input(values + LengthDelimited(2, "\xff"));
    EXPECT_EQ(CheckTextFields(input, *request.GetDescriptor()).message(),
              "session_token: not valid UTF-8");
    EXPECT_LT(input.handed_out(), 64 << 10);
  }
  CountingStream input(values + LengthDelimited(1, "sine_rnn"));
  EXPECT_TRUE(CheckTextFields(input, *request.GetDescriptor()).ok());
  EXPECT_LT(input.handed_out(), 64 << 10);
}

grpc::ByteBuffer InSlices(const std::string& bytes, size_t slice_size) {
  std::vector<grpc::Slice> slices;
  for (size_t at = 0; at < bytes.size(); at += slice_size) {
    const std::string part = bytes.substr(at, slice_size);
    slices.emplace_back(part.data(), part.size());
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

TEST(TextFieldsTest, ParseRequestChecksThenParsesABodyOfManySlices) {
  const v1::RegressRequest valid = ValidChunk();
  grpc::ByteBuffer body = InSlices(valid.SerializeAsString(), 3);
  v1::RegressRequest parsed;
  parsed.set_steps(99);  // Cleared by the parse.
  ASSERT_TRUE(ParseRequest(body, parsed).ok());
  EXPECT_EQ(parsed.SerializeAsString(), valid.SerializeAsString());
  EXPECT_EQ(body.Length(), 0u);

  body = InSlices(LengthDelimited(2, "abc\xc3") + valid.SerializeAsString(), 2);
  EXPECT_EQ(ParseRequest(body, parsed).message(),
            "session_token: not valid UTF-8");
  EXPECT_EQ(body.Length(), 0u);

  // Well-formed at the top, but a nested Sequence that is no message: the
  // parse refuses it, under the same message.
  v1::ClassifyRequest classify;
  body = InSlices(LengthDelimited(2, "\x08"), 1);
  EXPECT_EQ(ParseRequest(body, classify).message(),
            "request: not a valid rnnserve.v1.ClassifyRequest message");
}

// Text nested in messages, as the Open Inference Protocol's requests have
// it (tensor names, parameter keys and values), is checked too, named by
// its path, and the parse that follows never meets bad UTF-8.
TEST(TextFieldsTest, NestedTextIsCheckedAndNamedByItsPath) {
  const Descriptor& infer = *inference::ModelInferRequest::descriptor();
  auto tensor = [](const std::string& name) {
    return LengthDelimited(1, name) + LengthDelimited(2, "FP32");
  };
  // parameters["sequence_id"] = string_param(value): a map entry.
  auto parameter = [](const std::string& key, const std::string& value) {
    return LengthDelimited(4,
                           LengthDelimited(1, key) +
                               LengthDelimited(2, LengthDelimited(3, value)));
  };
  const std::string good = LengthDelimited(1, "sine_rnn") +
                           LengthDelimited(5, tensor("INPUT")) +
                           parameter("sequence_id", "s\xc3\xa8q");
  EXPECT_TRUE(Check(good, infer).ok());
  inference::ModelInferRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(good));
  EXPECT_EQ(parsed.inputs(0).name(), "INPUT");
  for (const std::string& bad : NotUtf8()) {
    EXPECT_EQ(Check(LengthDelimited(5, tensor(bad)), infer).message(),
              "inputs.name: not valid UTF-8");
    EXPECT_EQ(Check(good + parameter(bad, "1"), infer).message(),
              "parameters.key: not valid UTF-8");
    EXPECT_EQ(Check(parameter("sequence_id", bad), infer).message(),
              "parameters.value.string_param: not valid UTF-8");
  }
  // Nested bytes that are no message pass the scan, as a top-level field of
  // the wrong kind does; the parse refuses them, naming the request.
  for (const std::string& bytes : {LengthDelimited(5, std::string("\x0a\x05"
                                                                  "ab")),
                                   std::string("\x2a\x09\x0a\x01"
                                               "a",
                                               5)}) {
    grpc::ByteBuffer body = InSlices(bytes, 2);
    inference::ModelInferRequest request;
    EXPECT_EQ(ParseRequest(body, request).message(),
              "request: not a valid inference.ModelInferRequest message");
  }
}

}  // namespace
}  // namespace rnnserve::service
