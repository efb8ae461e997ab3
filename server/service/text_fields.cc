#include "server/service/text_fields.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"
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

// Deeper nesting than protobuf's own parse allows is no message.
constexpr int kMaxDepth = 100;

// The field of `message` that `tag` carries, if it is a text or message
// field sent length-delimited, else nullptr: any other field, and a string
// or message field sent with another wire type (the parse keeps it as an
// unknown field or refuses it), is skipped like any other.
const FieldDescriptor* ScannedField(const Descriptor& message, uint32_t tag) {
  if (WireFormatLite::GetTagWireType(tag) !=
      WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
    return nullptr;
  }
  const FieldDescriptor* field =
      message.FindFieldByNumber(WireFormatLite::GetTagFieldNumber(tag));
  if (field == nullptr || (field->type() != FieldDescriptor::TYPE_STRING &&
                           field->type() != FieldDescriptor::TYPE_MESSAGE)) {
    return nullptr;
  }
  return field;
}

// What ScanMessage returns for bytes that are no message (the caller names
// the message): DATA_LOSS, which a UTF-8 check never returns.
absl::Status Malformed() { return absl::DataLossError(""); }

// Scans one message up to the stream's current limit; nested messages are
// scanned in turn, their text fields named by their path ("inputs.name").
// Nested bytes that are no message are skipped here, as a top-level field
// of the wrong kind is: the parse refuses them.
absl::Status ScanMessage(google::protobuf::io::CodedInputStream& in,
                         const Descriptor& message, const std::string& path,
                         int depth) {
  std::string text;
  while (true) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) {
      // The end of the body (or of a nested message), or a tag that is
      // zero or cut short.
      return in.ConsumedEntireMessage() ? absl::OkStatus() : Malformed();
    }
    if (WireFormatLite::GetTagFieldNumber(tag) == 0) return Malformed();
    const FieldDescriptor* field = ScannedField(message, tag);
    if (field == nullptr) {
      // Skips the bytes of a length-delimited field, however long, in place.
      if (!WireFormatLite::SkipField(&in, tag)) return Malformed();
      continue;
    }
    uint32_t length = 0;
    if (!in.ReadVarint32(&length)) return Malformed();
    const std::string name = absl::StrCat(path, field->name());
    if (field->type() == FieldDescriptor::TYPE_STRING) {
      // A length of 2^31 or more turns negative, which ReadString refuses.
      if (!in.ReadString(&text, static_cast<int>(length))) return Malformed();
      RETURN_IF_ERROR(CheckUtf8(name.c_str(), text));
      continue;
    }
    // -1: no limit yet (the top level), where the reads find the end.
    const int room = in.BytesUntilLimit();
    if (depth >= kMaxDepth || static_cast<int>(length) < 0 ||
        (room >= 0 && static_cast<int>(length) > room)) {
      return Malformed();
    }
    const auto limit = in.PushLimit(static_cast<int>(length));
    absl::Status nested = ScanMessage(in, *field->message_type(),
                                      absl::StrCat(name, "."), depth + 1);
    if (absl::IsDataLoss(nested)) {
      if (!in.Skip(in.BytesUntilLimit())) return Malformed();
    } else {
      RETURN_IF_ERROR(nested);
    }
    in.PopLimit(limit);
  }
}

}  // namespace

absl::Status CheckTextFields(google::protobuf::io::ZeroCopyInputStream& input,
                             const Descriptor& message) {
  google::protobuf::io::CodedInputStream in(&input);
  absl::Status status = ScanMessage(in, message, "", 0);
  if (absl::IsDataLoss(status)) return NotAMessage(message);
  return status;
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
