// train/vlm_decoder: the Llama decoder of the trainable VLM (embeddings with
// image rows spliced in, RMSNorm, RoPE, causal GQA attention, SwiGLU, final
// norm, untied or tied lm_head), keeping one sequence's activations for the
// backward (private to train/vlm*).
#pragma once

#include <cstdint>
#include <vector>

#include "formats/hf_config.h"
#include "model/rope.h"
#include "train/param.h"
#include "train/vlm_linear.h"

namespace bitlens::train {

struct VlmDecoderLayer {
  Param *input_norm, *post_norm;
  VlmLinear q, k, v, o, gate, up, down;
};

class VlmDecoder {
 public:
  // Binds the language-model Params (HF v4 names) of `params`. `rope` outlives this.
  VlmDecoder(const ModelConfig& config, ParamSet& params, const RopeTable* rope);

  std::vector<VlmLinear*> linears();  // every linear incl. an untied lm_head (QAT registration)

  // ids [T] -> logits [T, vocab]. Positions whose id is image_token_index take
  // the rows of image_features [count, hidden] in order, when it is non-null.
  const float* Forward(const int32_t* ids, int64_t T, const float* image_features);
  // dlogits [T, vocab] (may be null) and dhidden[l] [T, hidden] (gradient of
  // hidden_after(l); null or missing = none) -> Param grads; d(image_features)
  // of the last Forward (when it had image rows) is written (not accumulated)
  // to dimage_features.
  void Backward(const float* dlogits, const std::vector<const float*>& dhidden, float* dimage_features);
  // Residual stream after layer `layer` of the last Forward, [T, hidden].
  const float* hidden_after(int layer) const { return acts_[static_cast<size_t>(layer) + 1].in.data(); }
  int64_t tokens() const { return T_; }

 private:
  struct LayerActs {
    std::vector<float> in;              // [T, h] residual stream entering the layer (acts_[L].in = final)
    std::vector<float> xn1, rstd1;      // [T, h], [T]
    std::vector<float> q, k, v;         // [T, heads·hd], [T, kv·hd] x2 (before RoPE for q, k)
    std::vector<float> qr, kr;          // after RoPE
    std::vector<float> probs;           // [heads, T, T]
    std::vector<float> attn;            // [T, heads·hd]
    std::vector<float> mid;             // [T, h] after the attention residual
    std::vector<float> xn2, rstd2;
    std::vector<float> gate, up, act;   // [T, I]
  };

  TextConfig t_;
  int64_t image_token_;
  const RopeTable* rope_;
  int64_t heads_, kv_heads_, hd_, rotary_dim_;
  float scale_;

  Param* embed_;
  std::vector<VlmDecoderLayer> layers_;
  Param* final_norm_;
  VlmLinear head_;  // lm_head, or embed_tokens when tied

  int64_t T_ = 0;
  std::vector<int32_t> ids_;
  std::vector<int64_t> image_pos_;   // positions spliced from image_features
  std::vector<LayerActs> acts_;      // num_layers + 1 (the last holds only `in`)
  std::vector<float> final_rstd_, xf_, logits_;

  std::vector<float> dx_, dmid_, dtmp_, dq_, dk_, dv_, dqr_, dkr_, dattn_, dscratch_, dact_, dgate_, dup_;
};

}  // namespace bitlens::train
