// model/projector: LLaVA multi-modal projector load and forward.
#include "model/projector.h"

namespace bitlens {

Result<ProjectorWeights> LoadProjectorWeights(WeightLoader& loader, const ModelConfig& config) {
  const int64_t vd = config.vision->hidden_size;
  const int64_t td = config.text.hidden_size;
  ProjectorWeights w;
  BL_ASSIGN_OR_RETURN(w.linear_1, loader.Matrix("linear_1.weight", {td, vd}));
  BL_ASSIGN_OR_RETURN(w.linear_2, loader.Matrix("linear_2.weight", {td, td}));
  if (config.multimodal_projector_bias) {
    BL_ASSIGN_OR_RETURN(w.linear_1_bias, loader.Vector("linear_1.bias", {td}));
    BL_ASSIGN_OR_RETURN(w.linear_2_bias, loader.Vector("linear_2.bias", {td}));
  }
  return w;
}

LlavaProjector::LlavaProjector(ProjectorWeights weights, kernels::Activation act, int64_t max_rows)
    : w_(std::move(weights)), act_(act), mid_(static_cast<size_t>(max_rows * w_.linear_1.n)) {}

void LlavaProjector::Project(const float* features, int64_t rows, float* out) {
  const float* b1 = w_.linear_1_bias.empty() ? nullptr : w_.linear_1_bias.data();
  const float* b2 = w_.linear_2_bias.empty() ? nullptr : w_.linear_2_bias.data();
  kernels::MatMul(features, rows, w_.linear_1, b1, mid_.data());  // [rows, text_hidden]
  kernels::Activate(act_, mid_.data(), rows * w_.linear_1.n);
  kernels::MatMul(mid_.data(), rows, w_.linear_2, b2, out);       // [rows, text_hidden]
}

}  // namespace bitlens
