// Bounded reads of whole files and folder listings, for the model loader and
// for the service's token and certificate files, so that the rest works on
// bytes. Errors are Status values naming the path; nothing throws. Stateless
// functions, safe from any thread.
#ifndef RNNSERVE_SERVER_COMMON_FILE_READER_H_
#define RNNSERVE_SERVER_COMMON_FILE_READER_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rnnserve {

// OK if `dir` is a folder (or a link to one). NotFound if nothing is there,
// InvalidArgument if it is something else. `what` names it in messages
// ("model folder").
absl::Status CheckFolder(const std::filesystem::path& dir,
                         std::string_view what);

// The whole content of the regular file at `path`. NotFound if it does not
// exist; InvalidArgument if it is not a regular file or is larger than
// `max_bytes`; FailedPrecondition if it cannot be read whole;
// ResourceExhausted if memory runs out.
absl::StatusOr<std::string> ReadWholeFile(const std::filesystem::path& path,
                                          uint64_t max_bytes);

// Names of the folders (or links to folders) in `dir`, sorted, without those
// whose name starts with '.'.
absl::StatusOr<std::vector<std::string>> ListSubfolders(
    const std::filesystem::path& dir);

}  // namespace rnnserve

#endif  // RNNSERVE_SERVER_COMMON_FILE_READER_H_
