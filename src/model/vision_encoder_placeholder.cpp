// Placeholder so that text-only builds link until the ViT tower lands.
#include "model/vision_encoder.h"

namespace bitlens {

Result<std::unique_ptr<VisionEncoder>> VisionEncoder::Load(const Checkpoint&, const ModelConfig&) {
  return Unsupported("the vision tower is not implemented yet");
}

}  // namespace bitlens
