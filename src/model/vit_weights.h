// model/vit_weights: binds checkpoint tensors to the ViT tower (CLIP or
// SigLIP) after checking each one's presence, dtype and shape against
// config.json. Matrices stay in the mmap (WeightView); only small vectors
// (norms, biases, class and position embeddings) are converted to f32.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "kernels/ops.h"

namespace bitlens {
namespace quant {
struct QuantizationConfig;
}  // namespace quant

// Fetches tensors named `prefix + name` from a checkpoint and checks them.
// Every error is one line naming the file and the tensor. The Tensor views
// it hands out are kept in `mapped()` so the mapping outlives the weights.
class WeightLoader {
 public:
  // `quant`: a quantized checkpoint's quantization_config; the weights it
  // lists are packed U8 rows and Matrix returns them with `format` set.
  WeightLoader(const Checkpoint& checkpoint, std::string prefix, const quant::QuantizationConfig* quant = nullptr)
      : checkpoint_(checkpoint), prefix_(std::move(prefix)), quant_(quant) {}

  bool Has(const std::string& name) const { return checkpoint_.Has(prefix_ + name); }
  // A weight of exactly `shape` (F32/F16/BF16, used in place) viewed as the
  // matrix [shape[0], product of the rest]: a conv weight [n, c, p, p] is the
  // matrix [n, c*p*p] in the same row-major bytes. A packed weight is U8
  // [n, RowBytes(format, k)] with logical shape [n, k] in quantization_config.
  Result<kernels::WeightView> Matrix(const std::string& name, const Shape& shape);
  // A small tensor of any float dtype with exactly `shape`, as f32.
  Result<std::vector<float>> Vector(const std::string& name, const Shape& shape);

  const std::string& prefix() const { return prefix_; }
  const std::vector<Tensor>& mapped() const { return mapped_; }
  // Where errors point when a tensor is absent: the checkpoint's file(s).
  std::string CheckpointPath() const;

 private:
  Result<Tensor> Fetch(const std::string& name);

  const Checkpoint& checkpoint_;
  std::string prefix_;
  const quant::QuantizationConfig* quant_ = nullptr;
  std::vector<Tensor> mapped_;
};

struct VitLayerWeights {
  std::vector<float> layer_norm1_weight, layer_norm1_bias;  // [hidden]
  kernels::WeightView q_proj, k_proj, v_proj, out_proj;     // [hidden, hidden]
  std::vector<float> q_bias, k_bias, v_bias, out_bias;      // [hidden]
  std::vector<float> layer_norm2_weight, layer_norm2_bias;  // [hidden]
  kernels::WeightView fc1;                                  // [intermediate, hidden]
  std::vector<float> fc1_bias;                              // [intermediate]
  kernels::WeightView fc2;                                  // [hidden, intermediate]
  std::vector<float> fc2_bias;                              // [hidden]
};

struct VitWeights {
  kernels::WeightView patch_embedding;  // conv [hidden, C, p, p] as [hidden, C*p*p]
  std::vector<float> patch_bias;        // [hidden]; SigLIP only (CLIP's conv has no bias)
  std::vector<float> class_embedding;   // [hidden]; CLIP only
  std::vector<float> position_embedding;  // [positions, hidden]
  std::vector<float> pre_layrnorm_weight, pre_layrnorm_bias;  // [hidden]; CLIP only (HF spelling)
  std::vector<VitLayerWeights> layers;  // only the layers the selected feature needs
};

// Name prefix of the vision tower's tensors in `checkpoint`, found by probing
// the layouts transformers writes: v4 "vision_tower.vision_model.", v5
// "model.vision_tower.vision_model.", and the flattened tower of newer v5
// releases ("model.vision_tower.", "vision_tower.").
Result<std::string> FindVisionTowerPrefix(const Checkpoint& checkpoint);
// "multi_modal_projector." (v4) or "model.multi_modal_projector." (v5).
Result<std::string> FindProjectorPrefix(const Checkpoint& checkpoint);

// Loads the embeddings and the first `num_layers` encoder layers of the tower
// whose tensors start with loader.prefix() (e.g. "vision_tower.vision_model.").
Result<VitWeights> LoadVitWeights(WeightLoader& loader, const VisionConfig& config, int64_t num_layers);

}  // namespace bitlens
