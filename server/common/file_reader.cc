#include "server/common/file_reader.h"

#include <algorithm>
#include <fstream>
#include <new>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "server/common/string_view.h"

namespace rnnserve {

namespace fs = std::filesystem;

absl::Status CheckFolder(const fs::path& dir, std::string_view what) {
  std::error_code ec;
  const fs::file_status status = fs::status(dir, ec);
  if (status.type() == fs::file_type::not_found) {
    return absl::NotFoundError(
        absl::StrCat(dir.string(), ": no such ", AbslView(what)));
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir.string(), ": cannot access the ", AbslView(what), ": ",
                     ec.message()));
  }
  if (status.type() != fs::file_type::directory) {
    return absl::InvalidArgumentError(absl::StrCat(
        dir.string(), ": the ", AbslView(what), " is not a folder"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const fs::path& path,
                                          uint64_t max_bytes) {
  const std::string name = path.string();
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) {
    return absl::NotFoundError(absl::StrCat(name, ": file not found"));
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": cannot access the file: ", ec.message()));
  }
  if (status.type() != fs::file_type::regular) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": not a regular file"));
  }
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": cannot get the file's size: ", ec.message()));
  }
  if (size > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": file is ", size,
                     " bytes, more than the limit of ", max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": cannot open the file for reading"));
  }
  std::string bytes;
  try {
    bytes.resize(size);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat(name, ": out of memory for the file's ", size, " bytes"));
  }
  in.read(bytes.data(), static_cast<std::streamsize>(size));
  if (static_cast<uintmax_t>(in.gcount()) != size) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": read ", in.gcount(), " of the file's ", size,
                     " bytes (did it change while being read?)"));
  }
  // A file that grew since its size was taken would be read in part.
  if (in.peek() != std::ifstream::traits_type::eof()) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": the file grew while being read"));
  }
  return bytes;
}

absl::StatusOr<std::vector<std::string>> ListSubfolders(const fs::path& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  std::vector<std::string> names;
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || name.front() == '.') continue;
    std::error_code type_ec;
    if (it->is_directory(type_ec)) names.push_back(name);
  }
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir.string(), ": cannot list the folder: ", ec.message()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace rnnserve
