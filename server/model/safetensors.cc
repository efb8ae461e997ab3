#include "server/model/safetensors.h"

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/common/json.h"
#include "server/common/status_macros.h"
#include "server/common/string_view.h"

namespace rnnserve::model {
namespace {

using json::Describe;
using json::Quote;

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
};

constexpr std::array<DTypeInfo, 10> kDTypes = {{
    {DType::kF64, "F64", 8},
    {DType::kF32, "F32", 4},
    {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2},
    {DType::kI64, "I64", 8},
    {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2},
    {DType::kI8, "I8", 1},
    {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},
}};

// A header's structure is three levels deep (header, entry, shape); anything
// deeper is malformed anyway. The value bound keeps a hostile 100 MiB header
// from growing into gigabytes of tree: 2M values are ~200k tensors.
constexpr json::ParseOptions kHeaderJsonOptions = {.max_depth = 16,
                                                   .max_values = 1 << 21};

std::optional<DType> DTypeFromName(std::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  return std::nullopt;
}

// An error in one header entry; `where` is "<source>: tensor \"<name>\"".
template <typename... Parts>
absl::Status EntryError(std::string_view where, const Parts&... parts) {
  return absl::InvalidArgumentError(
      absl::StrCat(AbslView(where), ": ", parts...));
}

// An entry is an object with exactly dtype, shape and data_offsets.
absl::Status CheckEntryKeys(const json::Value& entry, std::string_view where) {
  if (!entry.is_object()) {
    return EntryError(
        where, "entry must be an object with dtype, shape and data_offsets",
        ", got ", Describe(entry));
  }
  for (const json::Value::Member& member : entry.object()) {
    if (member.first != "dtype" && member.first != "shape" &&
        member.first != "data_offsets") {
      return EntryError(
          where, "unexpected key ", Quote(member.first),
          " (an entry has exactly dtype, shape and data_offsets)");
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (entry.Find(key) == nullptr) {
      return EntryError(where, "missing \"", key, "\"");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<DType> ParseDType(const json::Value& dtype,
                                 std::string_view where) {
  if (!dtype.is_string()) {
    return EntryError(where, "\"dtype\" must be a string, got ",
                      Describe(dtype));
  }
  std::optional<DType> known = DTypeFromName(dtype.string());
  if (!known) {
    return EntryError(where, "unknown dtype ", Quote(dtype.string()),
                      ", expected one of F64, F32, F16, BF16, I64, I32, I16, "
                      "I8, U8, BOOL");
  }
  return *known;
}

// Fills tensor->shape and tensor->num_elements from `shape`, and returns the
// tensor's size in bytes (tensor->dtype is set).
absl::StatusOr<uint64_t> ParseShape(const json::Value& shape,
                                    std::string_view where,
                                    TensorView* tensor) {
  if (!shape.is_array()) {
    return EntryError(
        where, "\"shape\" must be an array of non-negative integers, got ",
        Describe(shape));
  }
  tensor->shape.clear();
  bool has_zero = false;
  for (size_t i = 0; i < shape.array().size(); ++i) {
    const json::Value& dim = shape.array()[i];
    std::optional<int64_t> value = dim.integer();
    if (!value || *value < 0) {
      return EntryError(where, "\"shape\"[", i,
                        "] must be an integer in [0, 2^63), got ",
                        Describe(dim));
    }
    tensor->shape.push_back(*value);
    has_zero = has_zero || *value == 0;
  }
  // The element count and byte size, with every product checked: a shape
  // like [2^40, 2^40] must not wrap around to a small, matching size.
  uint64_t count = 1;
  uint64_t bytes = 0;
  if (has_zero) {
    count = 0;
  } else {
    for (int64_t dim : tensor->shape) {
      if (__builtin_mul_overflow(count, static_cast<uint64_t>(dim), &count) ||
          count > static_cast<uint64_t>(INT64_MAX)) {
        return EntryError(where, "shape ", FormatShape(tensor->shape),
                          " has too many elements");
      }
    }
  }
  if (__builtin_mul_overflow(count, DTypeSize(tensor->dtype), &bytes)) {
    return EntryError(where, "shape ", FormatShape(tensor->shape), " of ",
                      AbslView(DTypeName(tensor->dtype)),
                      " overflows a 64-bit byte size");
  }
  tensor->num_elements = static_cast<int64_t>(count);
  return bytes;
}

// Parses data_offsets into `begin`, `end` and checks them against the
// buffer's size and the tensor's `bytes`.
absl::Status ParseOffsets(const json::Value& offsets, std::string_view where,
                          uint64_t buffer_size, const TensorView& tensor,
                          uint64_t bytes, uint64_t* begin, uint64_t* end) {
  const json::Value::Array& pair = offsets.array();
  std::optional<int64_t> first, last;
  if (pair.size() == 2) {
    first = pair[0].integer();
    last = pair[1].integer();
  }
  if (!offsets.is_array() || !first || !last || *first < 0 || *last < 0) {
    return EntryError(
        where, "\"data_offsets\" must be [begin, end], two non-negative ",
        "integers, got ",
        offsets.is_array() && pair.size() == 2
            ? absl::StrCat("[", Describe(pair[0]), ", ", Describe(pair[1]), "]")
            : Describe(offsets));
  }
  *begin = static_cast<uint64_t>(*first);
  *end = static_cast<uint64_t>(*last);
  const std::string offsets_text = absl::StrCat("[", *begin, ", ", *end, "]");
  if (*begin > *end) {
    return EntryError(where, "\"data_offsets\" ", offsets_text,
                      ": begin is after end");
  }
  if (*end > buffer_size) {
    return EntryError(where, "\"data_offsets\" ", offsets_text,
                      " run past the end of the ", buffer_size,
                      "-byte data buffer");
  }
  if (*end - *begin != bytes) {
    return EntryError(where, "\"data_offsets\" ", offsets_text, " hold ",
                      *end - *begin, " bytes, but ",
                      AbslView(DTypeName(tensor.dtype)), " shape ",
                      FormatShape(tensor.shape), " needs ", bytes);
  }
  return absl::OkStatus();
}

// Parses one header entry into `tensor` (everything but `data`); returns its
// data_offsets in `begin`, `end`, checked against the buffer's size.
// `where` is "<source>: tensor \"<name>\"".
absl::Status ParseEntry(const json::Value& entry, std::string_view where,
                        uint64_t buffer_size, TensorView* tensor,
                        uint64_t* begin, uint64_t* end) {
  RETURN_IF_ERROR(CheckEntryKeys(entry, where));
  ASSIGN_OR_RETURN(tensor->dtype, ParseDType(*entry.Find("dtype"), where));
  ASSIGN_OR_RETURN(const uint64_t bytes,
                   ParseShape(*entry.Find("shape"), where, tensor));
  return ParseOffsets(*entry.Find("data_offsets"), where, buffer_size, *tensor,
                      bytes, begin, end);
}

absl::Status ParseMetadata(const json::Value& value, std::string_view source,
                           std::map<std::string, std::string>* metadata) {
  if (!value.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(source), ": \"__metadata__\" must be an object ",
                     "of strings, got ", Describe(value)));
  }
  for (const auto& [key, text] : value.object()) {
    if (!text.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(AbslView(source), ": \"__metadata__\" value of ",
                       Quote(key), " must be a string, got ", Describe(text)));
    }
    (*metadata)[key] = text.string();
  }
  return absl::OkStatus();
}

struct Span {
  uint64_t begin;
  uint64_t end;
  size_t tensor;  // Index in Safetensors::tensors.
};

// The safetensors rule: sorted by offset, the tensors tile [0, buffer_size).
absl::Status CheckTiling(std::vector<Span> spans, uint64_t buffer_size,
                         const Safetensors& file, std::string_view source) {
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return std::pair(a.begin, a.end) < std::pair(b.begin, b.end);
  });
  uint64_t position = 0;
  const Span* previous = nullptr;
  for (const Span& span : spans) {
    const std::string name = Quote(file.tensors[span.tensor].name);
    if (span.begin < position) {
      return absl::InvalidArgumentError(absl::StrCat(
          AbslView(source), ": tensor ", name, " (data_offsets [", span.begin,
          ", ", span.end, "]) overlaps tensor ",
          Quote(file.tensors[previous->tensor].name), " (data_offsets [",
          previous->begin, ", ", previous->end, "])"));
    }
    if (span.begin > position) {
      return absl::InvalidArgumentError(
          absl::StrCat(AbslView(source), ": bytes [", position, ", ",
                       span.begin, ") of the data buffer, before tensor ", name,
                       ", belong to no tensor"));
    }
    position = span.end;
    previous = &span;
  }
  if (position != buffer_size) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(source), ": bytes [", position, ", ", buffer_size,
                     ") at the end of the data buffer belong to no tensor"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string_view DTypeName(DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info.name;
  }
  return "unknown";
}

size_t DTypeSize(DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info.size;
  }
  return 0;
}

std::string FormatShape(std::span<const int64_t> shape) {
  // A hostile shape may have a million dimensions; a message needs a few.
  constexpr size_t kShown = 16;
  std::string text = absl::StrCat(
      "[", absl::StrJoin(shape.first(std::min(shape.size(), kShown)), ", "));
  if (shape.size() > kShown) absl::StrAppend(&text, ", ...");
  return text + "]";
}

absl::StatusOr<Safetensors> ParseSafetensors(std::string_view bytes,
                                             std::string_view source) {
  const auto error = [&](auto&&... parts) {
    return absl::InvalidArgumentError(
        absl::StrCat(AbslView(source), ": ", parts...));
  };
  if (bytes.size() < 8) {
    return error("file is ", bytes.size(),
                 " bytes, too short for the 8-byte header length");
  }
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) {
    header_size = header_size << 8 | static_cast<unsigned char>(bytes[i]);
  }
  if (header_size > kMaxSafetensorsHeaderBytes) {
    return error("header length ", header_size,
                 " exceeds the limit of 104857600 bytes (100 MiB)");
  }
  if (header_size > bytes.size() - 8) {
    return error("header length ", header_size, " runs past the end of the ",
                 bytes.size(), "-byte file");
  }
  absl::StatusOr<json::Value> header =
      json::Parse(bytes.substr(8, header_size), kHeaderJsonOptions);
  if (!header.ok()) {
    return error("header: ", header.status().message());
  }
  if (!header->is_object()) {
    return error("header must be a JSON object, got ", Describe(*header));
  }

  const std::string_view buffer = bytes.substr(8 + header_size);
  Safetensors file;
  std::vector<Span> spans;
  for (const auto& [name, entry] : header->object()) {
    if (name == "__metadata__") {
      RETURN_IF_ERROR(ParseMetadata(entry, source, &file.metadata));
      continue;
    }
    TensorView tensor;
    tensor.name = name;
    uint64_t begin = 0, end = 0;
    RETURN_IF_ERROR(ParseEntry(
        entry, absl::StrCat(AbslView(source), ": tensor ", Quote(name)),
        buffer.size(), &tensor, &begin, &end));
    tensor.data = buffer.substr(begin, end - begin);
    spans.push_back({begin, end, file.tensors.size()});
    file.tensors.push_back(std::move(tensor));
  }
  RETURN_IF_ERROR(CheckTiling(std::move(spans), buffer.size(), file, source));
  return file;
}

}  // namespace rnnserve::model
