// model/projector: LLaVA's multi-modal projector, the bridge from the vision
// tower's hidden size to the decoder's: linear_1 -> projector_hidden_act ->
// linear_2 (HF LlavaMultiModalProjector, one feature layer).
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "kernels/ops.h"
#include "model/vit_weights.h"

namespace bitlens {

struct ProjectorWeights {
  kernels::WeightView linear_1;    // [text_hidden, vision_hidden]
  std::vector<float> linear_1_bias;  // [text_hidden]; empty without multimodal_projector_bias
  kernels::WeightView linear_2;    // [text_hidden, text_hidden]
  std::vector<float> linear_2_bias;  // [text_hidden]
};

// Loads `multi_modal_projector.*` tensors under loader.prefix().
Result<ProjectorWeights> LoadProjectorWeights(WeightLoader& loader, const ModelConfig& config);

class LlavaProjector {
 public:
  // `max_rows`: the most feature rows one Project call will see.
  LlavaProjector(ProjectorWeights weights, kernels::Activation act, int64_t max_rows);

  // features [rows, vision_hidden] -> out [rows, text_hidden]; rows <= max_rows.
  void Project(const float* features, int64_t rows, float* out);

 private:
  ProjectorWeights w_;
  kernels::Activation act_;
  std::vector<float> mid_;  // [max_rows, text_hidden]
};

}  // namespace bitlens
