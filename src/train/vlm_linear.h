// train/vlm_linear: one weight matrix of the trainable VLM as the forward
// uses it — the fp32 master Param, an optional bias, and under QAT the
// fake-quantized copy the forward multiplies with (private to train/vlm*).
#pragma once

#include <cstdint>
#include <vector>

#include "train/fake_quant.h"
#include "train/param.h"

namespace bitlens::train {

class VlmLinear {
 public:
  VlmLinear() = default;
  // w [n, k] (a conv weight [n, c, p, p] counts as [n, c·p·p]); b [n] or null.
  VlmLinear(Param* w, Param* b);

  Param* weight_param() const { return w_; }
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }

  // From the next Prepare on, the forward uses FakeQuantForward(grids, w).
  void SetFakeQuant(FakeQuantGrids* grids);
  // Once per model forward: refreshes the fake-quantized copy (no-op without QAT).
  void Prepare();
  // The matrix the forward multiplies with: wq under QAT, else the master value.
  const float* w() const;
  const float* b() const;

  // y[m, n] = x[m, k] · w^T + b
  void Forward(const float* x, int64_t m, float* y) const;
  // dx[m, k] += dy · w (dx may be null); the weight and bias gradients go to
  // the Params (through the straight-through estimator under QAT).
  void Backward(const float* dy, const float* x, int64_t m, float* dx);

  // Gradient of the matrix the forward used ([n, k]); under QAT a scratch that
  // FinishWeightGrad routes into the master weight and the grids. For users
  // that are not a plain linear (patch embedding, tied head).
  float* BeginWeightGrad();
  void FinishWeightGrad();
  float* bias_grad() const;

 private:
  Param* w_ = nullptr;
  Param* b_ = nullptr;
  int64_t n_ = 0, k_ = 0;
  FakeQuantGrids* grids_ = nullptr;
  std::vector<float> wq_, dwq_;
};

}  // namespace bitlens::train
