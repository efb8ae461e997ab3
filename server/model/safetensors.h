// A strict reader of the safetensors file format: an 8-byte little-endian
// header length N, N bytes of JSON header, then the data buffer that the
// header's tensors tile exactly.
//
// The reader only checks the file's own consistency; which tensors a model
// needs is the loader's business (loader.h).
#ifndef RNNSERVE_SERVER_MODEL_SAFETENSORS_H_
#define RNNSERVE_SERVER_MODEL_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rnnserve::model {

// Element types of the format that the reader knows.
enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// The format's spelling: "F64", "F32", "F16", "BF16", "I64", "I32", "I16",
// "I8", "U8", "BOOL".
std::string_view DTypeName(DType dtype);
// Bytes per element.
size_t DTypeSize(DType dtype);

// A header larger than this is refused before it is parsed.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = uint64_t{100} << 20;

// One tensor of a parsed file.
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // Each >= 0; empty for a scalar.
  int64_t num_elements = 0;    // The product of shape.
  // num_elements * DTypeSize(dtype) bytes, little-endian, C order: a view
  // into the bytes given to ParseSafetensors, with no alignment promised.
  std::string_view data;
};

// A parsed file. Plain data; it borrows the file's bytes (see TensorView).
struct Safetensors {
  std::vector<TensorView> tensors;              // In the header's order.
  std::map<std::string, std::string> metadata;  // "__metadata__", if any.
};

// Parses the whole file `bytes`. The result's views point into `bytes`,
// which must outlive it. `source` names the file in messages (e.g. its path).
//
// Every inconsistency is InvalidArgument, with a message naming `source` and,
// where there is one, the tensor: a file shorter than 8 bytes; a header
// length above kMaxSafetensorsHeaderBytes or past the end of the file;
// malformed JSON; a header that is not an object; an entry without exactly
// "dtype", "shape" and "data_offsets"; an unknown dtype; a shape that is not
// non-negative integers, or whose byte size overflows; data_offsets that are
// not two integers with begin <= end <= the buffer's size, or whose length
// differs from the shape's byte size; tensors that overlap, leave a gap or do
// not cover the buffer to its end; "__metadata__" that is not an object of
// strings.
absl::StatusOr<Safetensors> ParseSafetensors(std::string_view bytes,
                                             std::string_view source);

// "[12, 3]"; "[]" for a scalar.
std::string FormatShape(std::span<const int64_t> shape);

}  // namespace rnnserve::model

#endif  // RNNSERVE_SERVER_MODEL_SAFETENSORS_H_
