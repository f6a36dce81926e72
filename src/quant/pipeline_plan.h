// quant/pipeline_plan: which tensor of a source checkpoint becomes which
// format in the quantized checkpoint — component defaults, glob overrides —
// and the order, shards and byte sizes the pipeline will write.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "quant/formats.h"

namespace bitlens::quant {

// Processing order: vision tower, projector, embeddings, decoder layers, lm head.
enum class Component { kVision, kProjector, kEmbed, kDecoder, kLmHead };
const char* ComponentName(Component c);  // "vision" | "projector" | "embed" | "decoder" | "lm-head"

// Formats are names from the table (quant/formats) or "keep" (copy as stored).
// f16/bf16 are written as plain F16/BF16 tensors (loadable by transformers);
// every other format as packed U8 rows listed in quantization_config.
struct PlanOptions {
  std::string vision = "w4g32";
  std::string projector = "f16";
  std::string decoder = "w2g64";
  std::string embed = "w4g32";
  std::string lm_head = "w4g32";
  // (glob over the full tensor name, format), applied in order; the last
  // matching one wins. Each glob must match at least one weight.
  std::vector<std::pair<std::string, std::string>> overrides;
  uint64_t max_shard_bytes = 2'000'000'000;  // as transformers counts "2GB"
};

struct PlannedTensor {
  std::string name;
  DType src_dtype = DType::kF32;
  Shape shape;                 // as stored in the source
  Component component = Component::kDecoder;
  int layer = -1;              // encoder/decoder layer index, -1 outside the layers
  bool weight = false;         // a linear/embedding weight the plan may convert
  const FormatInfo* format = nullptr;  // null: copied as stored
  bool packed = false;         // written as U8 [n, RowBytes(format, k)] (else F16/BF16/as stored)
  int64_t n = 0, k = 0;        // matrix view of a weight
  DType out_dtype = DType::kF32;
  Shape out_shape;
  uint64_t out_bytes = 0;
  size_t shard = 0;
  size_t source_index = 0;     // position in the source checkpoint's name list
};

// A group of tensors processed together: one encoder or decoder layer, or the
// remaining tensors of a component. Calibrated quantizers see units in order.
struct PlanUnit {
  Component component = Component::kDecoder;
  int layer = -1;
  size_t first = 0, count = 0;  // range of QuantPlan::tensors
};

struct QuantPlan {
  std::string source_dir;
  std::string config_json;      // the source config.json text
  ModelConfig config;
  std::vector<PlannedTensor> tensors;  // processing order = file order
  std::vector<PlanUnit> units;
  std::vector<std::string> shard_files;
  std::vector<uint64_t> shard_bytes;
  int64_t total_params = 0;
  uint64_t source_bytes = 0;    // tensor bytes of the source
  uint64_t output_bytes = 0;    // tensor bytes of the output
  bool tied_lm_head = false;    // lm head is the (possibly packed) embedding
  std::vector<std::pair<std::string, std::string>> component_formats;  // ("decoder", "w2g64"), ...
};

// Resolves "keep" (null) or a table name; InvalidArgument naming `what` otherwise.
Result<const FormatInfo*> ParseFormatSpec(const std::string& spec, const std::string& what);

// Reads <dir>/config.json and the safetensors headers (no tensor data) and
// decides every tensor's output. Errors: unreadable checkpoint, an unknown
// format, a glob matching nothing, a row length a format cannot hold.
Result<QuantPlan> PlanQuantization(const std::string& model_dir, const Checkpoint& checkpoint,
                                   const PlanOptions& options);

}  // namespace bitlens::quant
