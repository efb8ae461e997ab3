// Request bodies parsed by the service itself, text fields checked first.
//
// The request messages declare their text fields (model, session_token)
// `string`, so protobuf refuses a body whose text is not UTF-8, and logs an
// ERROR for each such body: a client could fill the log, and would learn
// only that its message did not parse. Here the body is scanned before the
// parse, nested messages included (the Open Inference Protocol's requests
// nest text: tensor names, parameter keys): a text field that is not UTF-8
// is refused by name, and the parse that follows can no longer fail on
// UTF-8, so protobuf never logs.
//
// Stateless functions; thread-safe.
#ifndef RNNSERVE_SERVER_SERVICE_TEXT_FIELDS_H_
#define RNNSERVE_SERVER_SERVICE_TEXT_FIELDS_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/zero_copy_stream.h>
#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"

namespace rnnserve::service {

// Scans the serialized `message` in `input`: each text field of `message`'s
// type, at any depth, is checked for UTF-8; every other field is skipped
// without being copied. INVALID_ARGUMENT "<path>: not valid UTF-8" (e.g.
// "model", "inputs.name") for the first text field that is not UTF-8,
// "request: not a valid <full name> message" when the message is not
// well-formed; OK otherwise.
absl::Status CheckTextFields(google::protobuf::io::ZeroCopyInputStream& input,
                             const google::protobuf::Descriptor& message);

// CheckTextFields on `body`, then parses it into `request` (which is
// cleared first); the errors are CheckTextFields's, and a body the parse
// refuses (a malformed nested message) is "request: not a valid <full name>
// message" too. `body` is cleared. Logs nothing.
absl::Status ParseRequest(grpc::ByteBuffer& body,
                          google::protobuf::Message& request);

}  // namespace rnnserve::service

#endif  // RNNSERVE_SERVER_SERVICE_TEXT_FIELDS_H_
