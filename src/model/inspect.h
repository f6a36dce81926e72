// model/inspect: what a checkpoint directory holds — family, architecture,
// per-component parameter counts, bytes and dtypes, shards — read from
// config.json and the safetensors headers only (no tensor data is touched),
// and checked against the tensors transformers would save for that config.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "tensor/tensor.h"

namespace bitlens {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;  // logical shape ([n, k] for a packed weight)
};

// A packed weight of a quantized checkpoint (stored as U8 rows).
struct PackedTensorInfo {
  std::string format;         // "w2g64", ...
  uint64_t stored_bytes = 0;  // bytes in the file
};

// Packed weights of one format in a quantized checkpoint.
struct FormatStats {
  int64_t tensors = 0;
  int64_t params = 0;
  uint64_t bytes = 0;
};

struct ComponentStats {
  std::string name;  // vision tower | projector | decoder layers | embeddings | lm head | other
  int64_t tensors = 0;
  int64_t params = 0;
  uint64_t bytes = 0;
  std::map<std::string, int64_t> params_by_dtype;  // "BF16" -> parameters
  std::string note;
};

struct ShardStats {
  std::string file;
  int64_t tensors = 0;
  uint64_t file_bytes = 0;
};

struct ModelReport {
  std::string dir;
  std::string family;  // llava | llava-siglip | llama | phi3
  std::string layout;  // v4 | v5 (LLaVA names) or "" for text-only models
  ModelConfig config;
  std::vector<ComponentStats> components;  // in the order listed above; empty ones omitted
  int64_t total_tensors = 0;
  int64_t total_params = 0;
  uint64_t total_bytes = 0;
  std::vector<ShardStats> shards;
  // Quantized checkpoints (config.json quantization_config): per-format totals
  // keyed by format name ("F32"/"BF16" for tensors stored as floats), and
  // every tensor for a per-tensor listing.
  bool quantized = false;
  std::string quant_method;
  std::map<std::string, FormatStats> formats;
  std::vector<TensorInfo> tensors;
  std::map<std::string, PackedTensorInfo> packed;  // by tensor name
  std::string synth_origin;  // "preset=... family=... seed=..." for `bitlens synth` output, else empty
  // Differences from transformers' layout for this config (names, shapes).
  bool layout_checked = false;
  std::string layout_error;  // why the check could not run
  std::vector<std::string> missing;
  std::vector<std::string> unexpected;
  std::vector<std::string> wrong_shape;
};

// Reads <dir>/config.json and the safetensors headers (model.safetensors or
// the shards of model.safetensors.index.json). Bad input is an error naming
// the file: missing/malformed config.json, unsupported model_type, missing
// or truncated safetensors.
Result<ModelReport> InspectCheckpoint(const std::string& dir);

// The same report for a list of tensors (e.g. a synth plan before writing).
// `packed` (quantized checkpoints) gives the format and stored bytes of the
// tensors whose TensorInfo carries the logical shape.
ModelReport InspectTensors(const ModelConfig& config, const std::vector<TensorInfo>& tensors,
                           const std::map<std::string, PackedTensorInfo>* packed = nullptr);

std::string FormatReportText(const ModelReport& report);
std::string FormatReportJson(const ModelReport& report);
// One line per tensor: name, format or dtype, logical shape, bytes, bits per weight.
std::string FormatTensorListText(const ModelReport& report);
// 3836021760 -> "3,836,021,760"
std::string WithThousands(uint64_t n);

}  // namespace bitlens
