// train/vlm_vision: forward and backward of the CLIP tower (HF
// CLIPVisionTransformer up to hidden_states[vision_feature_layer]) and the
// LLaVA projector (linear_1 → act → linear_2), in the order of the math.
#include "train/vlm_vision.h"

#include <algorithm>
#include <cmath>

#include "base/thread_pool.h"
#include "model/vit.h"
#include "train/ops.h"

namespace bitlens::train {
namespace {

Param* Need(ParamSet& params, const std::string& name) { return params.Find(name); }

void Zero(std::vector<float>& v, size_t n) { v.assign(n, 0.0f); }

void AddInto(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

float* GradOf(Param* p) { return p->trainable ? p->grad.data() : nullptr; }

}  // namespace

VlmVision::VlmVision(const ModelConfig& config, ParamSet& params, kernels::Activation tower_act,
                     kernels::Activation projector_act)
    : v_(*config.vision),
      text_hidden_(config.text.hidden_size),
      tower_act_(tower_act),
      projector_act_(projector_act) {
  grid_ = v_.image_size / v_.patch_size;
  seq_ = grid_ * grid_ + 1;  // CLIP: class token first
  heads_ = v_.num_attention_heads;
  head_dim_ = v_.hidden_size / heads_;
  scale_ = 1.0f / std::sqrt(static_cast<float>(head_dim_));
  used_layers_ = VitLayersForFeature(v_, config.vision_feature_layer);
  // "default" drops position 0 (the class token); "full" keeps every position.
  first_row_ = config.vision_feature_select_strategy == "default" ? 1 : 0;
  tokens_ = seq_ - first_row_;

  const std::string tower = "vision_tower.vision_model";
  const std::string emb = tower + ".embeddings";
  class_emb_ = Need(params, emb + ".class_embedding");
  pos_emb_ = Need(params, emb + ".position_embedding.weight");
  patch_ = VlmLinear(Need(params, emb + ".patch_embedding.weight"), nullptr);
  pre_w_ = Need(params, tower + ".pre_layrnorm.weight");
  pre_b_ = Need(params, tower + ".pre_layrnorm.bias");
  for (int64_t i = 0; i < used_layers_; ++i) {
    const std::string l = tower + ".encoder.layers." + std::to_string(i);
    auto lin = [&](const std::string& name) { return VlmLinear(Need(params, l + name + ".weight"), Need(params, l + name + ".bias")); };
    VlmVitLayer layer{Need(params, l + ".layer_norm1.weight"),
                      Need(params, l + ".layer_norm1.bias"),
                      Need(params, l + ".layer_norm2.weight"),
                      Need(params, l + ".layer_norm2.bias"),
                      lin(".self_attn.q_proj"),
                      lin(".self_attn.k_proj"),
                      lin(".self_attn.v_proj"),
                      lin(".self_attn.out_proj"),
                      lin(".mlp.fc1"),
                      lin(".mlp.fc2")};
    layers_.push_back(std::move(layer));
  }
  const std::string proj = "multi_modal_projector";
  const bool bias = config.multimodal_projector_bias;
  proj1_ = VlmLinear(Need(params, proj + ".linear_1.weight"), bias ? Need(params, proj + ".linear_1.bias") : nullptr);
  proj2_ = VlmLinear(Need(params, proj + ".linear_2.weight"), bias ? Need(params, proj + ".linear_2.bias") : nullptr);
  acts_.resize(static_cast<size_t>(used_layers_));
}

std::vector<VlmLinear*> VlmVision::linears() {
  std::vector<VlmLinear*> out = {&patch_};
  for (auto& l : layers_) {
    for (VlmLinear* x : {&l.q, &l.k, &l.v, &l.out, &l.fc1, &l.fc2}) out.push_back(x);
  }
  out.push_back(&proj1_);
  out.push_back(&proj2_);
  return out;
}

const float* VlmVision::Forward(const float* pixels) {
  const int64_t d = v_.hidden_size, I = v_.intermediate_size, S = seq_, P = grid_ * grid_;
  const int64_t p = v_.patch_size;
  const float eps = static_cast<float>(v_.layer_norm_eps);
  const auto sz = [](int64_t a, int64_t b = 1, int64_t c = 1) { return static_cast<size_t>(a * b * c); };
  for (VlmLinear* l : linears()) l->Prepare();

  // Embeddings: [class | patches] + positions, then pre_layrnorm (hidden_states[0]).
  cols_.resize(sz(P, v_.num_channels * p * p));
  patch_out_.resize(sz(P, d));
  PatchEmbedForward(pixels, v_.image_size, v_.image_size, p, patch_.w(), nullptr, d, cols_.data(), patch_out_.data());
  emb_.resize(sz(S, d));
  std::copy(class_emb_->value.begin(), class_emb_->value.end(), emb_.begin());
  std::copy(patch_out_.begin(), patch_out_.end(), emb_.begin() + d);
  AddInto(emb_.data(), pos_emb_->value.data(), S * d);
  pre_mean_.resize(sz(S));
  pre_rstd_.resize(sz(S));
  hidden_.resize(sz(S, d));
  LayerNormForward(emb_.data(), pre_w_->value.data(), pre_b_->value.data(), S, d, eps, hidden_.data(), pre_mean_.data(),
                   pre_rstd_.data());

  // Pre-norm encoder layers (HF CLIPEncoderLayer):
  //   h += out_proj(attn(ln1(h)));  h += fc2(act(fc1(ln2(h))))
  for (int64_t li = 0; li < used_layers_; ++li) {
    VlmVitLayer& L = layers_[static_cast<size_t>(li)];
    LayerActs& a = acts_[static_cast<size_t>(li)];
    a.in = hidden_;
    for (auto* buf : {&a.ln1, &a.q, &a.k, &a.v, &a.attn, &a.mid, &a.ln2}) buf->resize(sz(S, d));
    for (auto* buf : {&a.mean1, &a.rstd1, &a.mean2, &a.rstd2}) buf->resize(sz(S));
    a.probs.resize(sz(heads_, S, S));
    a.fc1.resize(sz(S, I));
    a.act.resize(sz(S, I));
    LayerNormForward(a.in.data(), L.ln1_w->value.data(), L.ln1_b->value.data(), S, d, eps, a.ln1.data(),
                     a.mean1.data(), a.rstd1.data());
    L.q.Forward(a.ln1.data(), S, a.q.data());
    L.k.Forward(a.ln1.data(), S, a.k.data());
    L.v.Forward(a.ln1.data(), S, a.v.data());
    AttentionForward(a.q.data(), a.k.data(), a.v.data(), S, heads_, heads_, head_dim_, /*causal=*/false, scale_,
                     a.probs.data(), a.attn.data());
    L.out.Forward(a.attn.data(), S, a.mid.data());
    AddInto(a.mid.data(), a.in.data(), S * d);
    LayerNormForward(a.mid.data(), L.ln2_w->value.data(), L.ln2_b->value.data(), S, d, eps, a.ln2.data(),
                     a.mean2.data(), a.rstd2.data());
    L.fc1.Forward(a.ln2.data(), S, a.fc1.data());
    ActivationForward(tower_act_, a.fc1.data(), S * I, a.act.data());
    L.fc2.Forward(a.act.data(), S, hidden_.data());
    AddInto(hidden_.data(), a.mid.data(), S * d);
  }

  // Projector on the selected rows: [N, d] -> [N, text hidden].
  const int64_t N = tokens_, td = text_hidden_;
  p1_.resize(sz(N, td));
  p1_act_.resize(sz(N, td));
  features_.resize(sz(N, td));
  proj1_.Forward(hidden_.data() + first_row_ * d, N, p1_.data());
  ActivationForward(projector_act_, p1_.data(), N * td, p1_act_.data());
  proj2_.Forward(p1_act_.data(), N, features_.data());
  return features_.data();
}

void VlmVision::Backward(const float* dfeatures) {
  const int64_t d = v_.hidden_size, I = v_.intermediate_size, S = seq_, P = grid_ * grid_;
  const int64_t N = tokens_, td = text_hidden_;
  const auto sz = [](int64_t a, int64_t b = 1, int64_t c = 1) { return static_cast<size_t>(a * b * c); };

  // Projector.
  Zero(dp_, sz(N, td));
  proj2_.Backward(dfeatures, p1_act_.data(), N, dp_.data());
  Zero(dp2_, sz(N, td));
  ActivationBackward(projector_act_, p1_.data(), dp_.data(), N * td, dp2_.data());
  Zero(dh_, sz(S, d));  // gradient of the selected hidden state; dropped rows stay zero
  proj1_.Backward(dp2_.data(), hidden_.data() + first_row_ * d, N, dh_.data() + first_row_ * d);

  // Encoder layers, last used first. dh_ holds d(loss)/d(layer output).
  for (int64_t li = used_layers_ - 1; li >= 0; --li) {
    VlmVitLayer& L = layers_[static_cast<size_t>(li)];
    LayerActs& a = acts_[static_cast<size_t>(li)];
    // MLP half: out = mid + fc2(act(fc1(ln2(mid)))).
    dmid_ = dh_;
    Zero(dwide_, sz(S, I));
    L.fc2.Backward(dh_.data(), a.act.data(), S, dwide_.data());
    Zero(dwide2_, sz(S, I));
    ActivationBackward(tower_act_, a.fc1.data(), dwide_.data(), S * I, dwide2_.data());
    Zero(dtmp_, sz(S, d));
    L.fc1.Backward(dwide2_.data(), a.ln2.data(), S, dtmp_.data());
    LayerNormBackward(dtmp_.data(), a.mid.data(), L.ln2_w->value.data(), a.mean2.data(), a.rstd2.data(), S, d,
                      dmid_.data(), GradOf(L.ln2_w), GradOf(L.ln2_b));
    // Attention half: mid = in + out_proj(attn(q, k, v of ln1(in))).
    dh_ = dmid_;
    Zero(dattn_, sz(S, d));
    L.out.Backward(dmid_.data(), a.attn.data(), S, dattn_.data());
    Zero(dq_, sz(S, d));
    Zero(dk_, sz(S, d));
    Zero(dv_, sz(S, d));
    dscratch_.resize(NumThreads() * sz(S));
    AttentionBackward(dattn_.data(), a.q.data(), a.k.data(), a.v.data(), a.probs.data(), S, heads_, heads_, head_dim_,
                      /*causal=*/false, scale_, dscratch_.data(), dq_.data(), dk_.data(), dv_.data());
    Zero(dtmp_, sz(S, d));
    L.q.Backward(dq_.data(), a.ln1.data(), S, dtmp_.data());
    L.k.Backward(dk_.data(), a.ln1.data(), S, dtmp_.data());
    L.v.Backward(dv_.data(), a.ln1.data(), S, dtmp_.data());
    LayerNormBackward(dtmp_.data(), a.in.data(), L.ln1_w->value.data(), a.mean1.data(), a.rstd1.data(), S, d,
                      dh_.data(), GradOf(L.ln1_w), GradOf(L.ln1_b));
  }

  // pre_layrnorm, then the embedding sum.
  Zero(dtmp_, sz(S, d));
  LayerNormBackward(dh_.data(), emb_.data(), pre_w_->value.data(), pre_mean_.data(), pre_rstd_.data(), S, d,
                    dtmp_.data(), GradOf(pre_w_), GradOf(pre_b_));
  if (float* g = GradOf(pos_emb_)) AddInto(g, dtmp_.data(), S * d);
  if (float* g = GradOf(class_emb_)) AddInto(g, dtmp_.data(), d);
  float* dw = patch_.BeginWeightGrad();
  if (dw != nullptr) {
    PatchEmbedBackward(dtmp_.data() + d, cols_.data(), P, v_.patch_size, d, dw, nullptr);
    patch_.FinishWeightGrad();
  }
}

}  // namespace bitlens::train
