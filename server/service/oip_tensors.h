// The Open Inference Protocol's tensors as rnnserve serves them: which
// tensors a model takes and gives, and how a request's tensors are found,
// checked and read. Plain functions; the calls are in oip_service.cc.
#ifndef RNNSERVE_SERVER_SERVICE_OIP_TENSORS_H_
#define RNNSERVE_SERVER_SERVICE_OIP_TENSORS_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "inference/grpc_predict_v2.pb.h"
#include "server/model/model.h"

namespace rnnserve::service::oip {

inline constexpr char kInput[] = "INPUT";
inline constexpr char kLengths[] = "LENGTHS";
inline constexpr char kLogits[] = "LOGITS";
inline constexpr char kProbabilities[] = "PROBABILITIES";
inline constexpr char kOutput[] = "OUTPUT";
inline constexpr char kFp32[] = "FP32";
inline constexpr char kInt32[] = "INT32";

// A tensor a model takes or gives; -1 in a shape is any size.
struct TensorSpec {
  const char* name;
  const char* datatype;
  std::vector<int64_t> shape;
};

// Whether the model is served as a classification model (else a stream).
bool Classifies(const model::ModelConfig& c);
// The tensors the model takes, INPUT first, and gives.
std::vector<TensorSpec> InputSpecs(const model::ModelConfig& c);
std::vector<TensorSpec> OutputSpecs(const model::ModelConfig& c);

// One input tensor of a request, with where its elements are.
struct Input {
  const inference::ModelInferRequest::InferInputTensor* tensor = nullptr;
  const std::string* raw = nullptr;  // Its raw_input_contents entry, if any.
  std::string field;                 // e.g. "inputs[0] (INPUT)".
};

// Finds the request's inputs by name: each must be one the model takes,
// given once; INPUT is required.
absl::Status FindInputs(const inference::ModelInferRequest& r,
                        const model::ModelConfig& c, Input& input,
                        Input& lengths);
// Checks a tensor's datatype and rank, and its fixed dimensions against
// `want` (-1: any size, but not negative).
absl::Status CheckTensor(const Input& in, const TensorSpec& want);
// The FP32 elements of `in`, `count` of them, all finite.
absl::Status ReadFp32(const Input& in, int64_t count, std::vector<float>& out);
// The INT32 elements of `in`, `count` of them.
absl::Status ReadInt32(const Input& in, int64_t count,
                       std::vector<int32_t>& out);
// The outputs a request asks for, by name; none asked: all of them.
absl::Status RequestedOutputs(const inference::ModelInferRequest& r,
                              const model::ModelConfig& c,
                              std::vector<std::string>& names);
// Appends an FP32 output, its data raw or typed as the request's were.
void AddOutput(inference::ModelInferResponse& response, const std::string& name,
               std::vector<int64_t> shape, std::span<const float> values,
               bool raw);

}  // namespace rnnserve::service::oip

#endif  // RNNSERVE_SERVER_SERVICE_OIP_TENSORS_H_
