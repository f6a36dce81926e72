// train/optim: AdamW (Loshchilov & Hutter 2019, decoupled weight decay, in
// the form torch.optim.AdamW computes it), the warmup + cosine schedule and
// global gradient-norm clipping.
#include "train/optim.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "base/thread_pool.h"

namespace bitlens::train {

AdamW::AdamW(const ParamSet& params, AdamWConfig config) : config_(config), m_(params.size()), v_(params.size()) {
  for (size_t i = 0; i < params.size(); ++i) {
    if (!params[i].trainable) continue;  // frozen: no moments until it trains
    m_[i].assign(params[i].value.size(), 0.0f);
    v_[i].assign(params[i].value.size(), 0.0f);
  }
}

// Per element, with t = step() after the increment:
//   m = β1 m + (1 − β1) g;   v = β2 v + (1 − β2) g²
//   p ← p · (1 − lr · wd)                               (only Param::decay)
//   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
void AdamW::Step(ParamSet& params, float lr) {
  ++step_;
  const double t = static_cast<double>(step_);
  const float b1 = config_.beta1, b2 = config_.beta2, eps = config_.eps;
  const float step_size = static_cast<float>(lr / (1.0 - std::pow(static_cast<double>(b1), t)));
  const float bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(b2), t)));
  if (m_.size() < params.size()) {  // parameters added after construction
    m_.resize(params.size());
    v_.resize(params.size());
  }
  for (size_t pi = 0; pi < params.size(); ++pi) {
    Param& p = params[pi];
    if (!p.trainable) continue;
    std::vector<float>& m = m_[pi];
    std::vector<float>& v = v_[pi];
    if (m.size() != p.value.size()) {  // unfrozen since construction
      m.assign(p.value.size(), 0.0f);
      v.assign(p.value.size(), 0.0f);
    }
    const float decay_factor = p.decay ? 1.0f - lr * config_.weight_decay : 1.0f;
    float* value = p.value.data();
    const float* grad = p.grad.data();
    float* mp = m.data();
    float* vp = v.data();
    auto update = [&](size_t begin, size_t end, size_t /*worker*/) {
      for (size_t i = begin; i < end; ++i) {
        const float g = grad[i];
        mp[i] = b1 * mp[i] + (1.0f - b1) * g;
        vp[i] = b2 * vp[i] + (1.0f - b2) * g * g;
        const float denom = std::sqrt(vp[i]) / bc2_sqrt + eps;
        value[i] = value[i] * decay_factor - step_size * mp[i] / denom;
      }
    };
    ParallelFor(p.value.size(), 4096, update);
  }
}

// HF's get_cosine_schedule_with_warmup shape, from max_lr down to min_lr:
// step < warmup: max_lr · step / warmup; then
// min_lr + (max_lr − min_lr) · ½ (1 + cos(π · (step − warmup) / (total − warmup))).
float WarmupCosineLr(int64_t step, int64_t warmup_steps, int64_t total_steps, float max_lr, float min_lr) {
  if (step < warmup_steps) {
    return static_cast<float>(static_cast<double>(max_lr) * static_cast<double>(step) /
                              static_cast<double>(warmup_steps));
  }
  if (step >= total_steps) return min_lr;
  const double progress =
      static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
  const double pi = 3.14159265358979323846;
  return static_cast<float>(min_lr + (static_cast<double>(max_lr) - min_lr) * 0.5 * (1.0 + std::cos(pi * progress)));
}

// Serial double sum in ParamSet order: the same norm for every thread count.
// A non-finite norm is returned with the gradients untouched (the caller
// skips that step rather than scaling by 0 or NaN).
double ClipGradNorm(ParamSet& params, double max_norm) {
  double sum_sq = 0.0;
  for (size_t pi = 0; pi < params.size(); ++pi) {
    const Param& p = params[pi];
    if (!p.trainable) continue;
    for (float g : p.grad) sum_sq += static_cast<double>(g) * g;
  }
  const double norm = std::sqrt(sum_sq);
  if (max_norm > 0.0 && std::isfinite(norm) && norm > max_norm) {
    const float scale = static_cast<float>(max_norm / norm);
    for (size_t pi = 0; pi < params.size(); ++pi) {
      Param& p = params[pi];
      if (!p.trainable) continue;
      for (float& g : p.grad) g *= scale;
    }
  }
  return norm;
}

}  // namespace bitlens::train
