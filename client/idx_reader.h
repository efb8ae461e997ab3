// Reads idx files, the format of MNIST and Fashion-MNIST, gzip-compressed or
// not: a magic number giving the element type and the number of dimensions,
// the dimensions as big-endian 32-bit integers, then the elements.
#ifndef RNNSERVE_CLIENT_IDX_READER_H_
#define RNNSERVE_CLIENT_IDX_READER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rnnserve::client {

// Some items of an idx file of unsigned bytes. An item is one slice along
// the first dimension: an image of an images file, a label of a labels file.
struct IdxArray {
  int64_t total_items = 0;     // Items in the file.
  int64_t first_item = 0;      // Index in the file of the first item read.
  int64_t items = 0;           // Items read.
  std::vector<int64_t> shape;  // Dimensions after the first: {28, 28}.
  std::vector<uint8_t> data;   // items * item_size() bytes.

  int64_t item_size() const;
  const uint8_t* item(int64_t i) const { return data.data() + i * item_size(); }
};

// Reads items [first, first + count) of the idx file at `path`, fewer when
// the file ends sooner; count < 0 reads to the end. Only unsigned-byte files
// (type 0x08) are accepted. Errors name the file.
absl::StatusOr<IdxArray> ReadIdx(const std::string& path, int64_t first,
                                 int64_t count);

}  // namespace rnnserve::client

#endif  // RNNSERVE_CLIENT_IDX_READER_H_
