// model/vit: the CLIP / SigLIP vision transformer as LLaVA uses it — patch
// embedding, (CLIP) class token and pre_layrnorm, pre-norm encoder layers —
// run up to the hidden state LLaVA selects (vision_feature_layer), never
// further. Activation buffers are allocated once at construction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "kernels/ops.h"
#include "model/linear_taps.h"
#include "model/vit_weights.h"

namespace bitlens {

// Maps a config hidden_act string to the kernel activation.
Result<kernels::Activation> ActivationFromName(const std::string& name, const std::string& field);

// Number of encoder layers that produce HF's hidden_states[feature_layer]:
// index 0 is the embeddings output, i the output of layer i, negative
// indices count from the end of the num_hidden_layers + 1 states.
int64_t VitLayersForFeature(const VisionConfig& config, int64_t feature_layer);

class VitTower {
 public:
  // `weights.layers.size()` layers are run; `act` is config.hidden_act.
  VitTower(const VisionConfig& config, VitWeights weights, kernels::Activation act);

  // Positions in the token sequence: patches, plus the class token for CLIP.
  int64_t seq_len() const { return seq_; }
  int64_t hidden_size() const { return config_.hidden_size; }

  // pixels [C, image_size, image_size] (f32, CHW) -> the selected hidden
  // state [seq_len, hidden]; the pointer stays valid until the next Forward.
  const float* Forward(const float* pixels);

  // The pieces of Forward, for calibration that walks the tower layer by
  // layer over many images. Embed: pixels -> hidden [seq_len, hidden] before
  // layer 0 (valid until the next call). ForwardLayer: hidden [seq_len,
  // hidden] in place through `layer` (the loaded weights or a quantized
  // copy); `tap` (may be null) sees each linear input.
  const float* Embed(const float* pixels);
  void ForwardLayer(const VitLayerWeights& layer, float* hidden, LinearInputTap* tap);
  const VitWeights& weights() const { return w_; }

 private:
  void EmbedPatches(const float* pixels);
  void RunLayer(const VitLayerWeights& l, float* hidden, LinearInputTap* tap);
  void EnsureScratch();

  VisionConfig config_;
  VitWeights w_;
  kernels::Activation act_;
  int64_t grid_ = 0;  // patches per side
  int64_t seq_ = 0;
  int64_t heads_ = 0, head_dim_ = 0;
  float scale_ = 1.f;
  // Buffers, sized once from the config.
  std::vector<float> patches_;       // [num_patches, C*p*p]
  std::vector<float> hidden_;        // [seq, hidden] residual stream
  std::vector<float> normed_;        // [seq, hidden]
  std::vector<float> q_, k_, v_;     // [seq, hidden] = [seq, heads, head_dim]
  std::vector<float> attn_;          // [seq, hidden]
  std::vector<float> mlp_;           // [seq, intermediate]
  std::vector<float> scratch_;       // attention: NumThreads() * seq
};

}  // namespace bitlens
