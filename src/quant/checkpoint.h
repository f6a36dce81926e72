// quant/checkpoint: the quantized checkpoint layout. A quantized weight keeps
// its Hugging Face name and is stored as U8 [n, RowBytes(format, k)];
// config.json's "quantization_config" names each such tensor's format and
// logical shape [n, k]. Parsing, serializing and the per-tensor checks the
// model loaders share live here.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "base/status.h"
#include "formats/safetensors.h"
#include "kernels/ops.h"
#include "quant/formats.h"

namespace bitlens::quant {

inline constexpr const char* kQuantMethod = "bitlens";
inline constexpr int kQuantConfigVersion = 1;

// One packed tensor: its format and its logical (unpacked) shape [n, k].
struct QuantizedTensor {
  const FormatInfo* format = nullptr;
  int64_t n = 0;
  int64_t k = 0;
  // Bytes of the stored U8 tensor: [n, RowBytes(format, k)].
  size_t row_bytes() const { return RowBytes(*format, k); }
};

// config.json's "quantization_config" for quant_method "bitlens". Empty
// (no tensors) for a full-precision checkpoint.
struct QuantizationConfig {
  int version = kQuantConfigVersion;
  std::map<std::string, QuantizedTensor> tensors;
  // Free-form keys written next to "tensors" (e.g. "method", "defaults");
  // kept as JSON text so readers round-trip them without interpreting them.
  std::map<std::string, std::string> extra_json;
  std::string source = "config.json";  // names the file in error messages

  bool empty() const { return tensors.empty(); }
  const QuantizedTensor* Find(const std::string& name) const {
    auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : &it->second;
  }
};

// Parses the "quantization_config" of config.json text; a file without one
// gives an empty config. Errors (one line, naming `source`): another
// quant_method, an unknown version or format, a malformed shape.
Result<QuantizationConfig> ParseQuantizationConfig(const std::string& config_json_text, const std::string& source);
// Reads <dir>/config.json.
Result<QuantizationConfig> LoadQuantizationConfig(const std::string& model_dir);
// The "quantization_config" object as written into config.json.
nlohmann::json QuantizationConfigToJson(const QuantizationConfig& config);

// The weight `name` of `checkpoint` as a WeightView of logical shape [n, k]:
// a float tensor (F32/F16/BF16) of exactly `shape` (a conv weight
// [n, c, p, p] is the matrix [n, c·p·p]), or, when `quant` lists the name, a
// U8 tensor [n, RowBytes(format, k)] whose listed logical shape is [n, k].
// `keep` receives the mapped tensor (the view points into it). Errors name the
// file and the tensor: missing, wrong dtype, wrong (byte) shape, a U8 tensor
// that quantization_config does not list, a listed shape that disagrees with
// config.json, a row length the format cannot hold.
Result<kernels::WeightView> MapWeight(const Checkpoint& checkpoint, const QuantizationConfig* quant,
                                      const std::string& name, const Shape& shape, Tensor* keep);

// Every tensor quantization_config lists must exist in the checkpoint.
Status CheckQuantizedTensorsPresent(const Checkpoint& checkpoint, const QuantizationConfig& quant);

// Dequantizes rows [row0, row0 + rows) of a packed or float weight view into
// out [rows, w.k] f32 (for embedding lookups and tests).
void DequantizeWeightRows(const kernels::WeightView& w, int64_t row0, int64_t rows, float* out);

}  // namespace bitlens::quant
