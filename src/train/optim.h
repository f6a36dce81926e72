// train/optim: AdamW with decoupled weight decay, the warmup + cosine learning
// rate schedule, and global gradient-norm clipping, over a ParamSet.
#pragma once

#include <cstdint>
#include <vector>

#include "train/param.h"

namespace bitlens::train {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;  // applied as p -= lr · wd · p (decoupled), only to Param::decay
};

// Optimizer state (first/second moments) per parameter, in ParamSet order.
class AdamW {
 public:
  AdamW(const ParamSet& params, AdamWConfig config);
  // One update of every trainable parameter from its grad with learning rate lr;
  // increments step(). Does not zero the gradients.
  void Step(ParamSet& params, float lr);
  int64_t step() const { return step_; }
  const AdamWConfig& config() const { return config_; }
  // Moments, for checkpointing (train/train_state): m[i], v[i] match params[i].
  // They are empty for a parameter frozen at construction until it first trains.
  std::vector<std::vector<float>>& m() { return m_; }
  std::vector<std::vector<float>>& v() { return v_; }
  void set_step(int64_t step) { step_ = step; }

 private:
  AdamWConfig config_;
  int64_t step_ = 0;
  std::vector<std::vector<float>> m_, v_;
};

// Linear warmup from 0 over warmup_steps, then cosine decay from max_lr to
// min_lr at total_steps (and min_lr after).
float WarmupCosineLr(int64_t step, int64_t warmup_steps, int64_t total_steps, float max_lr, float min_lr);

// Global L2 norm of all trainable gradients; when it exceeds max_norm (> 0),
// every gradient is scaled by max_norm / norm. Returns the norm before clipping.
double ClipGradNorm(ParamSet& params, double max_norm);

}  // namespace bitlens::train
