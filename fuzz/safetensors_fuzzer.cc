// Fuzzes the safetensors reader with any bytes as a weights file, and checks
// what it promises of a file it accepts: every tensor's bytes lie in the
// data buffer, match its dtype and shape, and the tensors tile the buffer.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "server/model/safetensors.h"

namespace {

using rnnserve::model::DTypeSize;
using rnnserve::model::Safetensors;
using rnnserve::model::TensorView;

void CheckAccepted(std::string_view bytes, const Safetensors& file) {
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) {
    header_size = header_size << 8 | static_cast<unsigned char>(bytes[i]);
  }
  const std::string_view buffer = bytes.substr(8 + header_size);

  std::vector<std::string_view> views;
  for (const TensorView& tensor : file.tensors) {
    int64_t elements = 1;
    for (int64_t dim : tensor.shape) {
      FUZZ_CHECK(dim >= 0);
      elements *= dim;  // Cannot overflow: the byte size was checked.
    }
    FUZZ_CHECK(elements == tensor.num_elements);
    FUZZ_CHECK(tensor.data.size() ==
               static_cast<uint64_t>(elements) * DTypeSize(tensor.dtype));
    FUZZ_CHECK(tensor.data.data() >= buffer.data());
    FUZZ_CHECK(tensor.data.data() + tensor.data.size() <=
               buffer.data() + buffer.size());
    (void)rnnserve::model::FormatShape(tensor.shape);
    views.push_back(tensor.data);
  }
  // Sorted by where they start, the views cover the buffer end to end.
  std::sort(views.begin(), views.end(),
            [](std::string_view a, std::string_view b) {
              return std::less<>()(a.data(), b.data()) ||
                     (a.data() == b.data() && a.size() < b.size());
            });
  const char* next = buffer.data();
  for (std::string_view view : views) {
    FUZZ_CHECK(view.data() == next);
    next += view.size();
  }
  FUZZ_CHECK(next == buffer.data() + buffer.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Safetensors> file =
      rnnserve::model::ParseSafetensors(bytes, "fuzz.safetensors");
  if (!file.ok()) {
    FUZZ_CHECK(file.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  CheckAccepted(bytes, *file);
  return 0;
}
