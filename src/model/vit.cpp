// model/vit: forward pass of the CLIP / SigLIP tower (HF CLIPVisionModel /
// SiglipVisionModel up to hidden_states[vision_feature_layer]).
#include "model/vit.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "base/thread_pool.h"

namespace bitlens {

Result<kernels::Activation> ActivationFromName(const std::string& name, const std::string& field) {
  using kernels::Activation;
  if (name == "quick_gelu") return Activation::kQuickGelu;
  if (name == "gelu") return Activation::kGelu;
  // gelu_new and gelu_fast are tanh approximations of the same curve.
  if (name == "gelu_pytorch_tanh" || name == "gelu_new") return Activation::kGeluTanh;
  if (name == "silu" || name == "swish") return Activation::kSilu;
  if (name == "relu") return Activation::kRelu;
  return Unsupported(field + " '" + name + "' is not supported (quick_gelu, gelu, gelu_pytorch_tanh, gelu_new, silu, relu)");
}

int64_t VitLayersForFeature(const VisionConfig& config, int64_t feature_layer) {
  const int64_t states = config.num_hidden_layers + 1;
  return feature_layer < 0 ? states + feature_layer : feature_layer;
}

VitTower::VitTower(const VisionConfig& config, VitWeights weights, kernels::Activation act)
    : config_(config), w_(std::move(weights)), act_(act) {
  grid_ = config_.image_size / config_.patch_size;
  seq_ = grid_ * grid_ + (config_.has_class_token() ? 1 : 0);
  heads_ = config_.num_attention_heads;
  head_dim_ = config_.hidden_size / heads_;
  scale_ = 1.0f / std::sqrt(static_cast<float>(head_dim_));
  const int64_t d = config_.hidden_size;
  const int64_t patch_dim = config_.num_channels * config_.patch_size * config_.patch_size;
  const auto n = [](int64_t a, int64_t b) { return static_cast<size_t>(a * b); };
  patches_.resize(n(grid_ * grid_, patch_dim));
  hidden_.resize(n(seq_, d));
  normed_.resize(n(seq_, d));
  q_.resize(n(seq_, d));
  k_.resize(n(seq_, d));
  v_.resize(n(seq_, d));
  attn_.resize(n(seq_, d));
  // intermediate_size is only bounded by a checked fc1 tensor when a layer runs.
  if (!w_.layers.empty()) mlp_.resize(n(seq_, config_.intermediate_size));
  const size_t threads = std::max<size_t>({NumThreads(), std::thread::hardware_concurrency(), 1});
  scratch_.resize(threads * static_cast<size_t>(seq_));
}

// Conv2d with stride = kernel = patch_size as a matmul: each patch is
// flattened in the conv weight's (c, ky, kx) order, patches in row-major
// grid order (HF: flatten(2).transpose(1, 2)).
//   pixels [C, H, W] -> patches_ [grid*grid, C*p*p] -> hidden_ rows
void VitTower::EmbedPatches(const float* pixels) {
  const int64_t p = config_.patch_size, C = config_.num_channels, W = config_.image_size, H = config_.image_size;
  const int64_t patch_dim = C * p * p;
  for (int64_t gy = 0; gy < grid_; ++gy) {
    for (int64_t gx = 0; gx < grid_; ++gx) {
      float* dst = patches_.data() + (gy * grid_ + gx) * patch_dim;
      for (int64_t c = 0; c < C; ++c) {
        for (int64_t ky = 0; ky < p; ++ky) {
          const float* src = pixels + (c * H + gy * p + ky) * W + gx * p;
          std::copy(src, src + p, dst + (c * p + ky) * p);
        }
      }
    }
  }
  const int64_t d = config_.hidden_size;
  const bool cls = config_.has_class_token();
  float* rows = hidden_.data() + (cls ? d : 0);
  kernels::MatMul(patches_.data(), grid_ * grid_, w_.patch_embedding, w_.patch_bias.empty() ? nullptr : w_.patch_bias.data(),
                  rows);
  if (cls) std::copy(w_.class_embedding.begin(), w_.class_embedding.end(), hidden_.begin());
  for (size_t i = 0; i < hidden_.size(); ++i) hidden_[i] += w_.position_embedding[i];
}

// Pre-norm block (HF CLIPEncoderLayer / SiglipEncoderLayer) on hidden [seq, d]:
//   h += out_proj(attn(layer_norm1(h)));  h += fc2(act(fc1(layer_norm2(h))))
void VitTower::RunLayer(const VitLayerWeights& l, float* hidden, LinearInputTap* tap) {
  const int64_t d = config_.hidden_size;
  const float eps = static_cast<float>(config_.layer_norm_eps);
  const int64_t n = seq_ * d;
  kernels::LayerNorm(hidden, l.layer_norm1_weight.data(), l.layer_norm1_bias.data(), seq_, d, eps, normed_.data());
  if (tap) tap->OnInput(LinearSite::kAttnIn, normed_.data(), seq_, d);
  kernels::MatMul(normed_.data(), seq_, l.q_proj, l.q_bias.data(), q_.data());
  kernels::MatMul(normed_.data(), seq_, l.k_proj, l.k_bias.data(), k_.data());
  kernels::MatMul(normed_.data(), seq_, l.v_proj, l.v_bias.data(), v_.data());
  // Bidirectional: every patch attends to every patch.
  kernels::Attention(q_.data(), seq_, heads_, k_.data(), v_.data(), seq_, heads_, head_dim_, /*q_pos0=*/0,
                     /*causal=*/false, scale_, scratch_.data(), attn_.data());
  if (tap) tap->OnInput(LinearSite::kAttnOut, attn_.data(), seq_, d);
  kernels::MatMul(attn_.data(), seq_, l.out_proj, l.out_bias.data(), normed_.data());
  for (int64_t i = 0; i < n; ++i) hidden[i] += normed_[i];

  kernels::LayerNorm(hidden, l.layer_norm2_weight.data(), l.layer_norm2_bias.data(), seq_, d, eps, normed_.data());
  if (tap) tap->OnInput(LinearSite::kMlpIn, normed_.data(), seq_, d);
  kernels::MatMul(normed_.data(), seq_, l.fc1, l.fc1_bias.data(), mlp_.data());
  kernels::Activate(act_, mlp_.data(), seq_ * config_.intermediate_size);
  if (tap) tap->OnInput(LinearSite::kMlpOut, mlp_.data(), seq_, config_.intermediate_size);
  kernels::MatMul(mlp_.data(), seq_, l.fc2, l.fc2_bias.data(), normed_.data());
  for (int64_t i = 0; i < n; ++i) hidden[i] += normed_[i];
}

void VitTower::EnsureScratch() {
  if (scratch_.size() < NumThreads() * static_cast<size_t>(seq_)) {
    scratch_.resize(NumThreads() * static_cast<size_t>(seq_));  // the pool grew past the CPU count
  }
}

const float* VitTower::Embed(const float* pixels) {
  EmbedPatches(pixels);
  if (config_.has_class_token()) {
    // hidden_states[0] of CLIP is taken after pre_layrnorm.
    kernels::LayerNorm(hidden_.data(), w_.pre_layrnorm_weight.data(), w_.pre_layrnorm_bias.data(), seq_,
                       config_.hidden_size, static_cast<float>(config_.layer_norm_eps), normed_.data());
    hidden_.swap(normed_);
  }
  return hidden_.data();
}

void VitTower::ForwardLayer(const VitLayerWeights& layer, float* hidden, LinearInputTap* tap) {
  EnsureScratch();
  if (mlp_.empty()) mlp_.resize(static_cast<size_t>(seq_ * config_.intermediate_size));
  RunLayer(layer, hidden, tap);
}

const float* VitTower::Forward(const float* pixels) {
  EnsureScratch();
  Embed(pixels);
  for (const VitLayerWeights& l : w_.layers) RunLayer(l, hidden_.data(), nullptr);
  // SigLIP's post_layernorm only touches last_hidden_state, never the
  // hidden_states list LLaVA reads, so it is not applied here.
  return hidden_.data();
}

}  // namespace bitlens
