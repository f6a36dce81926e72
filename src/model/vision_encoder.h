// model/vision_encoder: the image side of a LLaVA-layout VLM — a CLIP or
// SigLIP ViT tower, feature-layer selection, and the 2-layer MLP projector —
// producing one embedding per image token in the decoder's hidden size.
#pragma once

#include <cstdint>
#include <memory>

#include "base/status.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "tensor/tensor.h"

namespace bitlens {
namespace quant {
struct QuantizationConfig;
}  // namespace quant

class VisionEncoder {
 public:
  virtual ~VisionEncoder() = default;

  // Maps the tower and projector tensors of `checkpoint` (transformers v4
  // names `vision_tower.vision_model.*`, `multi_modal_projector.*` and v5
  // names `model.vision_tower.*`, `model.multi_modal_projector.*`).
  // `quant` (quantization_config of a quantized checkpoint) lists packed weights.
  static Result<std::unique_ptr<VisionEncoder>> Load(const Checkpoint& checkpoint, const ModelConfig& config,
                                                     const quant::QuantizationConfig* quant = nullptr);

  // pixel_values [3, image_size, image_size] -> out [image_seq_length, text hidden_size]
  virtual Status Encode(const Tensor& pixel_values, float* out) = 0;

  virtual int64_t num_image_tokens() const = 0;
};

}  // namespace bitlens
