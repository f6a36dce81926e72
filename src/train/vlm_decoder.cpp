// train/vlm_decoder: forward and backward of the Llama decoder (HF
// LlamaModel + lm_head) over one sequence, in the order of the math.
#include "train/vlm_decoder.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/thread_pool.h"
#include "train/ops.h"

namespace bitlens::train {
namespace {

void Zero(std::vector<float>& v, size_t n) { v.assign(n, 0.0f); }

void AddInto(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

float* GradOf(Param* p) { return p->trainable ? p->grad.data() : nullptr; }

}  // namespace

VlmDecoder::VlmDecoder(const ModelConfig& config, ParamSet& params, const RopeTable* rope)
    : t_(config.text), image_token_(config.image_token_index), rope_(rope) {
  heads_ = t_.num_attention_heads;
  kv_heads_ = t_.num_key_value_heads;
  hd_ = t_.head_dim;
  rotary_dim_ = rope_->rotary_dim();
  scale_ = 1.0f / std::sqrt(static_cast<float>(hd_));
  const std::string m = "language_model.model";
  embed_ = params.Find(m + ".embed_tokens.weight");
  for (int64_t i = 0; i < t_.num_hidden_layers; ++i) {
    const std::string l = m + ".layers." + std::to_string(i);
    auto lin = [&](const std::string& name) { return VlmLinear(params.Find(l + name + ".weight"), nullptr); };
    VlmDecoderLayer layer{params.Find(l + ".input_layernorm.weight"),
                          params.Find(l + ".post_attention_layernorm.weight"),
                          lin(".self_attn.q_proj"),
                          lin(".self_attn.k_proj"),
                          lin(".self_attn.v_proj"),
                          lin(".self_attn.o_proj"),
                          lin(".mlp.gate_proj"),
                          lin(".mlp.up_proj"),
                          lin(".mlp.down_proj")};
    layers_.push_back(std::move(layer));
  }
  final_norm_ = params.Find(m + ".norm.weight");
  head_ = VlmLinear(t_.tie_word_embeddings ? embed_ : params.Find("language_model.lm_head.weight"), nullptr);
  acts_.resize(static_cast<size_t>(t_.num_hidden_layers) + 1);
}

std::vector<VlmLinear*> VlmDecoder::linears() {
  std::vector<VlmLinear*> out;
  for (auto& l : layers_) {
    for (VlmLinear* x : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) out.push_back(x);
  }
  if (!t_.tie_word_embeddings) out.push_back(&head_);
  return out;
}

const float* VlmDecoder::Forward(const int32_t* ids, int64_t T, const float* image_features) {
  const int64_t h = t_.hidden_size, I = t_.intermediate_size, qd = heads_ * hd_, kvd = kv_heads_ * hd_;
  const int64_t V = t_.vocab_size;
  const float eps = static_cast<float>(t_.rms_norm_eps);
  const auto sz = [](int64_t a, int64_t b = 1, int64_t c = 1) { return static_cast<size_t>(a * b * c); };
  for (VlmLinear* l : linears()) l->Prepare();
  T_ = T;
  ids_.assign(ids, ids + T);

  // Token embeddings, image-token rows replaced by the projected image features.
  std::vector<float>& x0 = acts_[0].in;
  x0.resize(sz(T, h));
  EmbeddingForward(ids, T, embed_->value.data(), h, x0.data());
  image_pos_.clear();
  if (image_features != nullptr) {
    for (int64_t t = 0; t < T; ++t) {
      if (ids[t] != image_token_) continue;
      const float* row = image_features + static_cast<int64_t>(image_pos_.size()) * h;
      std::copy(row, row + h, x0.begin() + t * h);
      image_pos_.push_back(t);
    }
  }

  // Positions 0..T-1: the tables' first T rows (longrope never applies to Llama).
  const float* cos = rope_->cos(0, false);
  const float* sin = rope_->sin(0, false);
  for (int64_t li = 0; li < t_.num_hidden_layers; ++li) {
    VlmDecoderLayer& L = layers_[static_cast<size_t>(li)];
    LayerActs& a = acts_[static_cast<size_t>(li)];
    std::vector<float>& out = acts_[static_cast<size_t>(li) + 1].in;
    for (auto* buf : {&a.xn1, &a.mid, &a.xn2}) buf->resize(sz(T, h));
    for (auto* buf : {&a.q, &a.qr, &a.attn}) buf->resize(sz(T, qd));
    for (auto* buf : {&a.k, &a.v, &a.kr}) buf->resize(sz(T, kvd));
    for (auto* buf : {&a.gate, &a.up, &a.act}) buf->resize(sz(T, I));
    a.rstd1.resize(sz(T));
    a.rstd2.resize(sz(T));
    a.probs.resize(sz(heads_, T, T));
    out.resize(sz(T, h));

    // mid = in + o_proj(attn(rope(q), rope(k), v)) of input_layernorm(in)
    RmsNormForward(a.in.data(), L.input_norm->value.data(), T, h, eps, a.xn1.data(), a.rstd1.data());
    L.q.Forward(a.xn1.data(), T, a.q.data());
    L.k.Forward(a.xn1.data(), T, a.k.data());
    L.v.Forward(a.xn1.data(), T, a.v.data());
    RopeForward(a.q.data(), T, heads_, hd_, rotary_dim_, cos, sin, a.qr.data());
    RopeForward(a.k.data(), T, kv_heads_, hd_, rotary_dim_, cos, sin, a.kr.data());
    AttentionForward(a.qr.data(), a.kr.data(), a.v.data(), T, heads_, kv_heads_, hd_, /*causal=*/true, scale_,
                     a.probs.data(), a.attn.data());
    L.o.Forward(a.attn.data(), T, a.mid.data());
    AddInto(a.mid.data(), a.in.data(), T * h);
    // out = mid + down(silu(gate(x)) · up(x)), x = post_attention_layernorm(mid)
    RmsNormForward(a.mid.data(), L.post_norm->value.data(), T, h, eps, a.xn2.data(), a.rstd2.data());
    L.gate.Forward(a.xn2.data(), T, a.gate.data());
    L.up.Forward(a.xn2.data(), T, a.up.data());
    GatedForward(kernels::Activation::kSilu, a.gate.data(), a.up.data(), T * I, a.act.data());
    L.down.Forward(a.act.data(), T, out.data());
    AddInto(out.data(), a.mid.data(), T * h);
  }

  const std::vector<float>& last = acts_.back().in;
  final_rstd_.resize(sz(T));
  xf_.resize(sz(T, h));
  RmsNormForward(last.data(), final_norm_->value.data(), T, h, eps, xf_.data(), final_rstd_.data());
  logits_.resize(sz(T, V));
  head_.Forward(xf_.data(), T, logits_.data());
  return logits_.data();
}

void VlmDecoder::Backward(const float* dlogits, const std::vector<const float*>& dhidden, float* dimage_features) {
  const int64_t T = T_, h = t_.hidden_size, I = t_.intermediate_size, qd = heads_ * hd_, kvd = kv_heads_ * hd_;
  const auto sz = [](int64_t a, int64_t b = 1, int64_t c = 1) { return static_cast<size_t>(a * b * c); };
  const float* cos = rope_->cos(0, false);
  const float* sin = rope_->sin(0, false);

  // lm_head (a tied head accumulates into embed_tokens' gradient), final norm.
  Zero(dx_, sz(T, h));
  if (dlogits != nullptr) {
    Zero(dtmp_, sz(T, h));
    head_.Backward(dlogits, xf_.data(), T, dtmp_.data());
    RmsNormBackward(dtmp_.data(), acts_.back().in.data(), final_norm_->value.data(), final_rstd_.data(), T, h,
                    dx_.data(), GradOf(final_norm_));
  }

  // dx_ holds d(loss)/d(layer output), last layer first; hidden-state losses
  // join at the output of their layer.
  for (int64_t li = t_.num_hidden_layers - 1; li >= 0; --li) {
    VlmDecoderLayer& L = layers_[static_cast<size_t>(li)];
    LayerActs& a = acts_[static_cast<size_t>(li)];
    if (static_cast<size_t>(li) < dhidden.size() && dhidden[static_cast<size_t>(li)] != nullptr) {
      AddInto(dx_.data(), dhidden[static_cast<size_t>(li)], T * h);
    }
    // MLP half.
    dmid_ = dx_;
    Zero(dact_, sz(T, I));
    L.down.Backward(dx_.data(), a.act.data(), T, dact_.data());
    Zero(dgate_, sz(T, I));
    Zero(dup_, sz(T, I));
    GatedBackward(kernels::Activation::kSilu, a.gate.data(), a.up.data(), dact_.data(), T * I, dgate_.data(),
                  dup_.data());
    Zero(dtmp_, sz(T, h));
    L.gate.Backward(dgate_.data(), a.xn2.data(), T, dtmp_.data());
    L.up.Backward(dup_.data(), a.xn2.data(), T, dtmp_.data());
    RmsNormBackward(dtmp_.data(), a.mid.data(), L.post_norm->value.data(), a.rstd2.data(), T, h, dmid_.data(),
                    GradOf(L.post_norm));
    // Attention half.
    dx_ = dmid_;
    Zero(dattn_, sz(T, qd));
    L.o.Backward(dmid_.data(), a.attn.data(), T, dattn_.data());
    Zero(dqr_, sz(T, qd));
    Zero(dkr_, sz(T, kvd));
    Zero(dv_, sz(T, kvd));
    dscratch_.resize(NumThreads() * sz(T));
    AttentionBackward(dattn_.data(), a.qr.data(), a.kr.data(), a.v.data(), a.probs.data(), T, heads_, kv_heads_, hd_,
                      /*causal=*/true, scale_, dscratch_.data(), dqr_.data(), dkr_.data(), dv_.data());
    Zero(dq_, sz(T, qd));
    Zero(dk_, sz(T, kvd));
    RopeBackward(dqr_.data(), T, heads_, hd_, rotary_dim_, cos, sin, dq_.data());
    RopeBackward(dkr_.data(), T, kv_heads_, hd_, rotary_dim_, cos, sin, dk_.data());
    Zero(dtmp_, sz(T, h));
    L.q.Backward(dq_.data(), a.xn1.data(), T, dtmp_.data());
    L.k.Backward(dk_.data(), a.xn1.data(), T, dtmp_.data());
    L.v.Backward(dv_.data(), a.xn1.data(), T, dtmp_.data());
    RmsNormBackward(dtmp_.data(), a.in.data(), L.input_norm->value.data(), a.rstd1.data(), T, h, dx_.data(),
                    GradOf(L.input_norm));
  }

  // Image rows go back to the projector; the rest to embed_tokens.
  for (size_t j = 0; j < image_pos_.size(); ++j) {
    float* row = dx_.data() + image_pos_[j] * h;
    if (dimage_features != nullptr) std::copy(row, row + h, dimage_features + static_cast<int64_t>(j) * h);
    std::fill(row, row + h, 0.0f);
  }
  if (float* g = GradOf(embed_)) EmbeddingBackward(ids_.data(), T, dx_.data(), h, g);
}

}  // namespace bitlens::train
