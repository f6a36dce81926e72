// model/vision_encoder: the LLaVA image path — ViT tower up to the selected
// feature layer, the select strategy, then the projector — behind the
// VisionEncoder interface the Session calls.
#include "model/vision_encoder.h"

#include "model/projector.h"
#include "model/vit.h"
#include "model/vit_weights.h"

namespace bitlens {
namespace {

class LlavaVisionEncoder final : public VisionEncoder {
 public:
  LlavaVisionEncoder(const ModelConfig& config, VitTower tower, LlavaProjector projector, std::vector<Tensor> mapped)
      : config_(config), tower_(std::move(tower)), projector_(std::move(projector)), mapped_(std::move(mapped)) {
    // HF LLaVA's "default" strategy drops position 0: the class token for
    // CLIP, and (as transformers does) the first real patch for SigLIP.
    first_row_ = config_.vision_feature_select_strategy == "default" ? 1 : 0;
    tokens_ = tower_.seq_len() - first_row_;
  }

  Status Encode(const Tensor& pixel_values, float* out) override {
    const VisionConfig& v = *config_.vision;
    const Shape want = {v.num_channels, v.image_size, v.image_size};
    Shape got = pixel_values.shape();
    if (got.size() == 4 && got[0] == 1) got.erase(got.begin());  // a batch of one
    if (got != want) {
      return InvalidArgument("pixel_values has shape " + ShapeToString(pixel_values.shape()) + "; the vision tower takes " +
                             ShapeToString(want) + " (vision_config.image_size=" + std::to_string(v.image_size) + ")");
    }
    if (pixel_values.dtype() != DType::kF32 || !pixel_values.is_contiguous()) {
      return InvalidArgument("pixel_values must be a contiguous F32 tensor (got " +
                             std::string(DTypeName(pixel_values.dtype())) + ")");
    }
    const float* hidden = tower_.Forward(pixel_values.data_as<float>());  // [seq, vision_hidden]
    projector_.Project(hidden + first_row_ * tower_.hidden_size(), tokens_, out);  // [tokens, text_hidden]
    return Status::Ok();
  }

  int64_t num_image_tokens() const override { return tokens_; }

 private:
  ModelConfig config_;
  VitTower tower_;
  LlavaProjector projector_;
  std::vector<Tensor> mapped_;  // keeps the weight mappings alive
  int64_t first_row_ = 0;
  int64_t tokens_ = 0;
};

}  // namespace

Result<std::unique_ptr<VisionEncoder>> VisionEncoder::Load(const Checkpoint& checkpoint, const ModelConfig& config,
                                                           const quant::QuantizationConfig* quant) {
  if (!config.vision) return InvalidArgument("config.json has no vision_config: not a vision-language model");
  const VisionConfig& v = *config.vision;
  BL_ASSIGN_OR_RETURN(kernels::Activation act, ActivationFromName(v.hidden_act, "config.json: vision_config.hidden_act"));
  BL_ASSIGN_OR_RETURN(kernels::Activation proj_act,
                      ActivationFromName(config.projector_hidden_act, "config.json: projector_hidden_act"));

  // Buffers are sized from these before any tensor bounds them; a hostile
  // config must not overflow the arithmetic (2^16 patches per side at most).
  if (v.image_size / v.patch_size > 65536) {
    return InvalidArgument("config.json: vision_config.image_size / patch_size = " +
                           std::to_string(v.image_size / v.patch_size) + " patches per side is implausible");
  }
  BL_ASSIGN_OR_RETURN(std::string tower_prefix, FindVisionTowerPrefix(checkpoint));
  BL_ASSIGN_OR_RETURN(std::string projector_prefix, FindProjectorPrefix(checkpoint));
  WeightLoader tower_loader(checkpoint, tower_prefix, quant);
  // Run only the layers that feed hidden_states[vision_feature_layer].
  const int64_t layers = VitLayersForFeature(v, config.vision_feature_layer);
  if (layers < 0 || layers > v.num_hidden_layers) {
    return InvalidArgument("config.json: vision_feature_layer " + std::to_string(config.vision_feature_layer) +
                           " is outside the tower's " + std::to_string(v.num_hidden_layers) + " layers");
  }
  BL_ASSIGN_OR_RETURN(VitWeights tower_weights, LoadVitWeights(tower_loader, v, layers));
  WeightLoader projector_loader(checkpoint, projector_prefix, quant);
  BL_ASSIGN_OR_RETURN(ProjectorWeights projector_weights, LoadProjectorWeights(projector_loader, config));

  std::vector<Tensor> mapped = tower_loader.mapped();
  mapped.insert(mapped.end(), projector_loader.mapped().begin(), projector_loader.mapped().end());
  VitTower tower(v, std::move(tower_weights), act);
  LlavaProjector projector(std::move(projector_weights), proj_act, tower.seq_len());
  return std::unique_ptr<VisionEncoder>(
      new LlavaVisionEncoder(config, std::move(tower), std::move(projector), std::move(mapped)));
}

}  // namespace bitlens
