// train/vlm_vision: the image side of the trainable VLM — CLIP tower up to
// hidden_states[vision_feature_layer], feature selection and the LLaVA
// projector — with the activations of one image kept for the backward
// (private to train/vlm*).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/hf_config.h"
#include "kernels/ops.h"
#include "train/param.h"
#include "train/vlm_linear.h"

namespace bitlens::train {

struct VlmVitLayer {
  Param *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  VlmLinear q, k, v, out, fc1, fc2;
};

class VlmVision {
 public:
  // Binds the tower and projector Params (HF v4 names) of `params`.
  VlmVision(const ModelConfig& config, ParamSet& params, kernels::Activation tower_act,
            kernels::Activation projector_act);

  int64_t num_image_tokens() const { return tokens_; }
  // Every linear of the tower and projector (QAT registration).
  std::vector<VlmLinear*> linears();

  // pixels [3, image, image] -> image features [num_image_tokens, text hidden]
  const float* Forward(const float* pixels);
  // dfeatures [num_image_tokens, text hidden] of the last Forward -> Param grads.
  void Backward(const float* dfeatures);

 private:
  struct LayerActs {
    std::vector<float> in;           // [S, d] residual stream entering the layer
    std::vector<float> ln1, mean1, rstd1;  // [S, d], [S], [S]
    std::vector<float> q, k, v;      // [S, d]
    std::vector<float> probs;        // [heads, S, S]
    std::vector<float> attn;         // [S, d]
    std::vector<float> mid;          // [S, d] after the attention residual
    std::vector<float> ln2, mean2, rstd2;
    std::vector<float> fc1, act;     // [S, I]
  };

  VisionConfig v_;
  int64_t text_hidden_;
  kernels::Activation tower_act_, projector_act_;
  int64_t grid_, seq_, heads_, head_dim_, used_layers_, first_row_, tokens_;
  float scale_;

  Param *class_emb_, *pos_emb_, *pre_w_, *pre_b_;
  VlmLinear patch_;
  std::vector<VlmVitLayer> layers_;
  VlmLinear proj1_, proj2_;

  // Forward activations.
  std::vector<float> cols_;         // [P, 3·p·p] im2col
  std::vector<float> patch_out_;    // [P, d]
  std::vector<float> emb_;          // [S, d] before pre_layrnorm
  std::vector<float> pre_mean_, pre_rstd_;
  std::vector<LayerActs> acts_;     // used_layers_ entries
  std::vector<float> hidden_;       // [S, d] output of the last used layer (hidden_states[feature_layer])
  std::vector<float> p1_, p1_act_;  // [N, text hidden]
  std::vector<float> features_;     // [N, text hidden]

  // Backward scratch.
  std::vector<float> dh_, dmid_, dtmp_, dwide_, dwide2_, dq_, dk_, dv_, dattn_, dscratch_, dp_, dp2_, dfeat_;
};

}  // namespace bitlens::train
