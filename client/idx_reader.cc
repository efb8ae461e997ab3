#include "client/idx_reader.h"

#include <zlib.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "server/common/status_macros.h"

namespace rnnserve::client {
namespace {

// Refuses files whose header would make us allocate absurd amounts.
constexpr int64_t kMaxItemSize = int64_t{1} << 30;

struct GzCloser {
  void operator()(gzFile file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads exactly `size` bytes, or fails naming the file.
absl::Status ReadExactly(gzFile file, const std::string& path, void* out,
                         int64_t size) {
  char* dst = static_cast<char*>(out);
  while (size > 0) {
    const unsigned chunk =
        static_cast<unsigned>(std::min<int64_t>(size, int64_t{1} << 30));
    const int got = gzread(file, dst, chunk);
    if (got < 0) {
      int errnum = 0;
      return absl::DataLossError(absl::StrCat(
          "\"", path, "\": cannot read: ", gzerror(file, &errnum)));
    }
    if (got == 0) {
      return absl::DataLossError(
          absl::StrCat("\"", path, "\": truncated idx file"));
    }
    dst += got;
    size -= got;
  }
  return absl::OkStatus();
}

// Skips `size` bytes by reading them: gzseek would do the same, slower.
absl::Status Skip(gzFile file, const std::string& path, int64_t size) {
  std::vector<char> buffer(std::min<int64_t>(size, 1 << 20));
  while (size > 0) {
    const int64_t chunk = std::min<int64_t>(size, buffer.size());
    RETURN_IF_ERROR(ReadExactly(file, path, buffer.data(), chunk));
    size -= chunk;
  }
  return absl::OkStatus();
}

uint32_t BigEndian32(const unsigned char bytes[4]) {
  return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) |
         (uint32_t{bytes[2]} << 8) | uint32_t{bytes[3]};
}

}  // namespace

int64_t IdxArray::item_size() const {
  int64_t size = 1;
  for (int64_t d : shape) size *= d;
  return size;
}

absl::StatusOr<IdxArray> ReadIdx(const std::string& path, int64_t first,
                                 int64_t count) {
  GzFile file(gzopen(path.c_str(), "rb"));
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open \"", path, "\""));
  }
  unsigned char magic[4];
  RETURN_IF_ERROR(ReadExactly(file.get(), path, magic, 4));
  if (magic[0] != 0 || magic[1] != 0 || magic[3] == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", path, "\": not an idx file (bad magic number)"));
  }
  if (magic[2] != 0x08) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", path, "\": idx element type 0x", absl::Hex(magic[2]),
                     ", expected 0x08 (unsigned byte)"));
  }
  IdxArray array;
  for (int d = 0; d < magic[3]; ++d) {
    unsigned char bytes[4];
    RETURN_IF_ERROR(ReadExactly(file.get(), path, bytes, 4));
    const int64_t dim = BigEndian32(bytes);
    if (d == 0) {
      array.total_items = dim;
    } else {
      array.shape.push_back(dim);
    }
  }
  const int64_t item_size = array.item_size();
  if (item_size <= 0 || item_size > kMaxItemSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", path, "\": implausible idx item size ", item_size));
  }
  if (first < 0 || first >= array.total_items) {
    return absl::OutOfRangeError(
        absl::StrCat("\"", path, "\" has ", array.total_items,
                     " items; cannot start at item ", first));
  }
  const int64_t available = array.total_items - first;
  array.first_item = first;
  array.items = count < 0 ? available : std::min(count, available);
  RETURN_IF_ERROR(Skip(file.get(), path, first * item_size));
  array.data.resize(array.items * item_size);
  RETURN_IF_ERROR(
      ReadExactly(file.get(), path, array.data.data(), array.data.size()));
  return array;
}

}  // namespace rnnserve::client
