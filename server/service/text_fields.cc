#include "server/service/text_fields.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/service/validation.h"

namespace rnnserve::service {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::internal::WireFormatLite;

absl::Status NotAMessage(const Descriptor& message) {
  return absl::InvalidArgumentError(
      absl::StrCat("request: not a valid ", message.full_name(), " message"));
}

// The text field of `message` that `tag` carries, or nullptr: a string
// field sent with any other wire type is no text (the parse keeps it as an
// unknown field), and is skipped like any other.
const FieldDescriptor* TextField(const Descriptor& message, uint32_t tag) {
  if (WireFormatLite::GetTagWireType(tag) !=
      WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
    return nullptr;
  }
  const FieldDescriptor* field =
      message.FindFieldByNumber(WireFormatLite::GetTagFieldNumber(tag));
  if (field == nullptr || field->type() != FieldDescriptor::TYPE_STRING) {
    return nullptr;
  }
  return field;
}

}  // namespace

absl::Status CheckTextFields(google::protobuf::io::ZeroCopyInputStream& input,
                             const Descriptor& message) {
  google::protobuf::io::CodedInputStream in(&input);
  std::string text;
  while (true) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) {
      // The end of the body, or a tag that is zero or cut short.
      if (in.ConsumedEntireMessage()) return absl::OkStatus();
      return NotAMessage(message);
    }
    if (WireFormatLite::GetTagFieldNumber(tag) == 0) {
      return NotAMessage(message);
    }
    if (const FieldDescriptor* field = TextField(message, tag)) {
      uint32_t length = 0;
      // A length of 2^31 or more turns negative, which ReadString refuses.
      if (!in.ReadVarint32(&length) ||
          !in.ReadString(&text, static_cast<int>(length))) {
        return NotAMessage(message);
      }
      if (absl::Status status = CheckUtf8(field->name().c_str(), text);
          !status.ok()) {
        return status;
      }
      continue;
    }
    // Skips the bytes of a length-delimited field, however long, in place.
    if (!WireFormatLite::SkipField(&in, tag)) return NotAMessage(message);
  }
}

absl::Status ParseRequest(grpc::ByteBuffer& body,
                          google::protobuf::Message& request) {
  const Descriptor& message = *request.GetDescriptor();
  {
    grpc::ProtoBufferReader reader(&body);
    if (absl::Status status = CheckTextFields(reader, message); !status.ok()) {
      body.Clear();
      return status;
    }
  }
  grpc::ProtoBufferReader reader(&body);
  const bool parsed = request.ParseFromZeroCopyStream(&reader);
  body.Clear();
  if (!parsed) return NotAMessage(message);
  return absl::OkStatus();
}

}  // namespace rnnserve::service
