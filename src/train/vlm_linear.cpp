// train/vlm_linear: the master / fake-quantized weight switch of one linear.
#include "train/vlm_linear.h"

#include <algorithm>

#include "train/ops.h"

namespace bitlens::train {

VlmLinear::VlmLinear(Param* w, Param* b) : w_(w), b_(b) {
  n_ = w->shape[0];
  k_ = w->numel() / n_;
}

void VlmLinear::SetFakeQuant(FakeQuantGrids* grids) {
  grids_ = grids;
  if (grids_ == nullptr) {
    wq_.clear();
    wq_.shrink_to_fit();
    dwq_.clear();
    dwq_.shrink_to_fit();
    return;
  }
  wq_.assign(w_->value.size(), 0.0f);
  dwq_.assign(w_->value.size(), 0.0f);
}

void VlmLinear::Prepare() {
  if (grids_ != nullptr) FakeQuantForward(*grids_, w_->value.data(), wq_.data());
}

const float* VlmLinear::w() const { return grids_ != nullptr ? wq_.data() : w_->value.data(); }
const float* VlmLinear::b() const { return b_ != nullptr ? b_->value.data() : nullptr; }

void VlmLinear::Forward(const float* x, int64_t m, float* y) const { LinearForward(x, w(), b(), m, k_, n_, y); }

float* VlmLinear::BeginWeightGrad() {
  if (!w_->trainable && grids_ == nullptr) return nullptr;
  if (grids_ == nullptr) return w_->grad.data();
  std::fill(dwq_.begin(), dwq_.end(), 0.0f);
  return dwq_.data();
}

// STE into the master weight's gradient and LSQ into the grids (always: QAT
// may freeze the weight and learn only the scales; a frozen Param's gradient
// is simply unused).
void VlmLinear::FinishWeightGrad() {
  if (grids_ == nullptr) return;
  FakeQuantBackward(*grids_, w_->value.data(), dwq_.data(), w_->grad.data());
}

float* VlmLinear::bias_grad() const { return b_ != nullptr && b_->trainable ? b_->grad.data() : nullptr; }

void VlmLinear::Backward(const float* dy, const float* x, int64_t m, float* dx) {
  float* dw = BeginWeightGrad();
  LinearBackward(dy, x, w(), m, k_, n_, dx, dw, bias_grad());
  FinishWeightGrad();
}

}  // namespace bitlens::train
