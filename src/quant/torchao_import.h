// quant/torchao_import: a checkpoint written by torchao's QAT convert step
// (weights as IntxUnpackedToInt8Tensor, saved with torchao's safetensors
// flattening as HF transformers does) -> a bitlens quantized checkpoint.
//
// What torchao writes (torchao 0.18, IntxWeightOnlyConfig /
// Int8DynamicActivationIntxWeightConfig, intx_packing_format "unpacked_to_int8"):
//   safetensors tensors, for a weight "<module>.weight" of logical shape [n, k]:
//     "<module>._weight_qdata"      I8  [n, k]    q in [qmin, qmax] = [-2^(b-1), 2^(b-1) - 1]
//     "<module>._weight_scale"      F32|BF16|F16 [n, k/g]  (the model dtype unless scale_dtype)
//     "<module>._weight_zero_point" I8 (or a float dtype with range learning) [n, k/g]
//   safetensors __metadata__: "tensor_names" = JSON list of the state-dict names, and per name
//     a JSON object {"_type": "IntxUnpackedToInt8Tensor" | "Tensor", "_data": {"target_dtype":
//     {"_type": "torch.dtype", "_data": "int4"}, "block_size": [1, g], "dtype": ...,
//     "activation_quantization": null | "int8_asym_per_token"}, "_tensor_data_names": [...]}.
//   dequantization (torchao dequantize_affine, zero-point domain INT):
//     w = (q − zero_point) · scale
// The mapping onto a bitlens affine grid (w = min + scale·c, c in [0, 2^b − 1]):
//     c = q − qmin,   scale = scale,   min = (qmin − zero_point) · scale,
// exact except for the rounding of scale and min to the f16 the format stores.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "quant/formats.h"
#include "tensor/dtype.h"

namespace bitlens::quant {

// One torchao weight [n, k], group size g along k (k % g == 0); scale and
// zero_point widened to f32 (exact from every dtype torchao writes).
struct TorchaoWeight {
  std::string name;
  int bits = 0;
  int64_t n = 0, k = 0, group_size = 0;
  const int8_t* qdata = nullptr;      // [n, k]
  std::vector<float> scale;           // [n, k / g]
  std::vector<float> zero_point;      // [n, k / g]
  // The model dtype torchao dequantizes in: its (q − zp)·scale is rounded to it.
  DType compute = DType::kF32;
};

// What storing torchao's grids in a bitlens format changes, over all
// weights: the dequantized value bitlens reads vs torchao's (q − zp)·scale in f32.
struct TorchaoMappingError {
  int64_t groups = 0;
  int64_t exact_groups = 0;       // every weight of the group dequantizes bit-identically
  double max_abs = 0.0;           // max |w_bitlens − w_torchao|
  double max_rel_scale = 0.0;     // max |f16(scale) − scale| / |scale|
  double max_in_steps = 0.0;      // max |w_bitlens − w_torchao| / |scale| (in steps of the grid)
  void Merge(const TorchaoMappingError& o);
};

// The bitlens format of a torchao b-bit weight in groups of g: w2g32/64/128,
// w3g32/64, w4g32/64. Unsupported (naming what is supported) otherwise.
Result<const FormatInfo*> TorchaoFormat(int bits, int64_t group_size);

// Packs w into n rows of RowBytes(format, k) bytes at out, accumulating the
// mapping error. InvalidArgument for codes outside [qmin, qmax], scales that
// are negative, not finite or beyond f16, and minimums beyond f16.
Status PackTorchaoWeight(const TorchaoWeight& w, const FormatInfo& format, uint8_t* out,
                         TorchaoMappingError* error);

struct TorchaoImportOptions {
  std::string input_dir;   // config.json + *.safetensors as torchao / HF transformers wrote them
  std::string output_dir;  // created (staged, then renamed into place)
  bool overwrite = false;
};

struct TorchaoImportedTensor {
  std::string name;
  const FormatInfo* format = nullptr;  // null: copied unchanged
  int bits = 0;
  int64_t n = 0, k = 0;
  std::string activation_quantization;  // torchao's, "" for weight-only
  TorchaoMappingError error;
};

struct TorchaoImportResult {
  std::vector<TorchaoImportedTensor> tensors;
  TorchaoMappingError error;  // over every packed tensor
  int64_t packed = 0, copied = 0;
};

// Reads input_dir, writes output_dir as a bitlens checkpoint: each torchao
// weight packed under its own grids (no re-quantization), every plain tensor
// copied, config.json with a bitlens quantization_config (torchao's kept under
// "torchao"), side files (tokenizer, ...) copied. Errors name the file and tensor.
Result<TorchaoImportResult> ImportTorchaoCheckpoint(const TorchaoImportOptions& options);

// One line per input: how many tensors were packed into which formats and the
// largest mapping error.
std::string TorchaoImportSummary(const TorchaoImportResult& result);

}  // namespace bitlens::quant
