#include "server/service/oip_tensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace rnnserve::service::oip {
namespace {

namespace pb = ::inference;
using Tensor = pb::ModelInferRequest::InferInputTensor;

// Raw tensor contents are little-endian; this server copies them as they are.
static_assert(std::endian::native == std::endian::little,
              "raw_input_contents are read as host floats");

template <typename Dims>
std::string ShapeText(const Dims& dims) {
  return absl::StrCat("[", absl::StrJoin(dims, ", "), "]");
}

std::string SpecNames(const std::vector<TensorSpec>& specs) {
  std::vector<std::string> names;
  for (const TensorSpec& s : specs) {
    names.push_back(
        absl::StrCat(s.name, " (", s.datatype, " ", ShapeText(s.shape), ")"));
  }
  return absl::StrJoin(names, ", ");
}

}  // namespace

bool Classifies(const model::ModelConfig& c) {
  return c.task == model::Task::kClassification;
}

std::vector<TensorSpec> InputSpecs(const model::ModelConfig& c) {
  if (Classifies(c)) {
    return {{kInput, kFp32, {-1, -1, c.input_size}}, {kLengths, kInt32, {-1}}};
  }
  return {{kInput, kFp32, {1, -1, c.input_size}}};
}

std::vector<TensorSpec> OutputSpecs(const model::ModelConfig& c) {
  if (Classifies(c)) {
    return {{kLogits, kFp32, {-1, c.output_size}},
            {kProbabilities, kFp32, {-1, c.output_size}}};
  }
  return {{kOutput, kFp32, {1, -1, c.output_size}}};
}

// Finds the request's inputs by name: each must be one the model takes,
// given once; INPUT is required.
absl::Status FindInputs(const pb::ModelInferRequest& r,
                        const model::ModelConfig& c, Input& input,
                        Input& lengths) {
  const int raw = r.raw_input_contents_size();
  if (raw != 0 && raw != r.inputs_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "raw_input_contents: ", raw, " entries for ", r.inputs_size(),
        " inputs; give one per input, in order, or none"));
  }
  for (int i = 0; i < r.inputs_size(); ++i) {
    const Tensor& t = r.inputs(i);
    Input* slot = nullptr;
    if (t.name() == kInput) {
      slot = &input;
    } else if (t.name() == kLengths && Classifies(c)) {
      slot = &lengths;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("inputs[", i, "].name: model \"", c.name,
                       "\" takes no tensor \"", t.name().substr(0, 128),
                       "\"; its inputs: ", SpecNames(InputSpecs(c))));
    }
    if (slot->tensor != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inputs[", i, "].name: tensor \"", t.name(), "\" given twice"));
    }
    slot->tensor = &t;
    slot->field = absl::StrCat("inputs[", i, "] (", t.name(), ")");
    if (raw != 0) {
      slot->raw = &r.raw_input_contents(i);
      if (t.has_contents() && t.contents().ByteSizeLong() != 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            slot->field,
            ".contents: the request has raw_input_contents; "
            "give each tensor's data there or in contents, not both"));
      }
    }
  }
  if (input.tensor == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("inputs: model \"", c.name, "\" needs the tensor ",
                     SpecNames({InputSpecs(c)[0]})));
  }
  return absl::OkStatus();
}

// Checks a tensor's datatype and rank, and its fixed dimensions against
// `want` (-1: any size, but not negative).
absl::Status CheckTensor(const Input& in, const TensorSpec& want) {
  const Tensor& t = *in.tensor;
  if (t.datatype() != want.datatype) {
    return absl::InvalidArgumentError(
        absl::StrCat(in.field, ".datatype: expected ", want.datatype,
                     ", got \"", t.datatype().substr(0, 32), "\""));
  }
  bool fits = t.shape_size() == static_cast<int>(want.shape.size());
  for (int d = 0; fits && d < t.shape_size(); ++d) {
    fits =
        t.shape(d) >= 0 && (want.shape[d] < 0 || t.shape(d) == want.shape[d]);
  }
  if (!fits) {
    return absl::InvalidArgumentError(
        absl::StrCat(in.field, ".shape: expected ", ShapeText(want.shape),
                     " (-1: any size), got ", ShapeText(t.shape())));
  }
  return absl::OkStatus();
}

// The FP32 elements of `in`, `count` of them, all finite.
absl::Status ReadFp32(const Input& in, int64_t count, std::vector<float>& out) {
  out.resize(count);
  if (in.raw != nullptr) {
    if (in.raw->size() != static_cast<size_t>(count) * sizeof(float)) {
      return absl::InvalidArgumentError(absl::StrCat(
          in.field, ": shape ", ShapeText(in.tensor->shape()), " has ", count,
          " FP32 elements (", count * 4, " bytes), raw_input_contents has ",
          in.raw->size(), " bytes"));
    }
    if (count > 0) std::memcpy(out.data(), in.raw->data(), in.raw->size());
  } else {
    const auto& values = in.tensor->contents().fp32_contents();
    if (values.size() != count) {
      return absl::InvalidArgumentError(
          absl::StrCat(in.field, ".contents.fp32_contents: shape ",
                       ShapeText(in.tensor->shape()), " has ", count,
                       " elements, got ", values.size()));
    }
    std::copy(values.begin(), values.end(), out.begin());
  }
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(out[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          in.field, ": element ", i, " is ", out[i], ", not a finite number"));
    }
  }
  return absl::OkStatus();
}

// The INT32 elements of `in`, `count` of them.
absl::Status ReadInt32(const Input& in, int64_t count,
                       std::vector<int32_t>& out) {
  out.resize(count);
  if (in.raw != nullptr) {
    if (in.raw->size() != static_cast<size_t>(count) * sizeof(int32_t)) {
      return absl::InvalidArgumentError(absl::StrCat(
          in.field, ": shape ", ShapeText(in.tensor->shape()), " has ", count,
          " INT32 elements (", count * 4, " bytes), raw_input_contents has ",
          in.raw->size(), " bytes"));
    }
    if (count > 0) std::memcpy(out.data(), in.raw->data(), in.raw->size());
    return absl::OkStatus();
  }
  const auto& values = in.tensor->contents().int_contents();
  if (values.size() != count) {
    return absl::InvalidArgumentError(
        absl::StrCat(in.field, ".contents.int_contents: shape ",
                     ShapeText(in.tensor->shape()), " has ", count,
                     " elements, got ", values.size()));
  }
  std::copy(values.begin(), values.end(), out.begin());
  return absl::OkStatus();
}

// The outputs a request asks for, by name; none asked: all of them.
absl::Status RequestedOutputs(const pb::ModelInferRequest& r,
                              const model::ModelConfig& c,
                              std::vector<std::string>& names) {
  const std::vector<TensorSpec> specs = OutputSpecs(c);
  if (r.outputs_size() == 0) {
    for (const TensorSpec& s : specs) names.push_back(s.name);
    return absl::OkStatus();
  }
  for (int i = 0; i < r.outputs_size(); ++i) {
    const std::string& name = r.outputs(i).name();
    bool known = false;
    for (const TensorSpec& s : specs) known = known || name == s.name;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "outputs[", i, "].name: model \"", c.name, "\" gives no tensor \"",
          name.substr(0, 128), "\"; its outputs: ", SpecNames(specs)));
    }
    names.push_back(name);
  }
  return absl::OkStatus();
}

// Appends an FP32 output, its data raw or typed as the request's were.
void AddOutput(pb::ModelInferResponse& response, const std::string& name,
               std::vector<int64_t> shape, std::span<const float> values,
               bool raw) {
  pb::ModelInferResponse::InferOutputTensor* t = response.add_outputs();
  t->set_name(name);
  t->set_datatype(kFp32);
  for (int64_t d : shape) t->add_shape(d);
  if (raw) {
    response.add_raw_output_contents()->assign(
        reinterpret_cast<const char*>(values.data()),
        values.size() * sizeof(float));
  } else {
    t->mutable_contents()->mutable_fp32_contents()->Add(values.begin(),
                                                        values.end());
  }
}

}  // namespace rnnserve::service::oip
