// quant/layer_stats: what calibration collects for one linear layer's input
// x [rows, k]: Σ xᵀx (the GPTQ Hessian up to 2/N, the output-error metric) and
// per-channel |x| statistics (AWQ's scales). One object per distinct input.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"

namespace bitlens::quant {

struct LayerStats {
  int64_t k = 0;          // input features of the layer
  int64_t rows_seen = 0;  // activation rows (tokens / patches) accumulated
  // [k, k] row-major Σ_t x_tᵀ x_t in f32 (256 MiB at k = 8192). Accumulate
  // updates only the upper triangle (j >= i); call Symmetrize() before reading
  // the lower one. The algorithms read the upper triangle only.
  std::vector<float> xtx;
  std::vector<double> abs_sum;  // [k] Σ_t |x_t,j|
  std::vector<float> abs_max;   // [k] max_t |x_t,j|

  LayerStats() = default;
  explicit LayerStats(int64_t k_in);  // zeroed statistics for k inputs

  // Adds m activation rows x [m, k] (f32, row-major). InvalidArgument on a
  // non-finite value (nothing is added then). Uses BLAS ssyrk.
  Status Accumulate(const float* x, int64_t m);
  // Adds another LayerStats of the same k (e.g. collected on another thread).
  Status Merge(const LayerStats& other);
  // Fills the lower triangle of xtx from the upper one.
  void Symmetrize();

  // Σ_t x_t,i · x_t,j, read from the upper triangle.
  float Xtx(int64_t i, int64_t j) const {
    return i <= j ? xtx[static_cast<size_t>(i * k + j)] : xtx[static_cast<size_t>(j * k + i)];
  }
  // [k] mean |x| per input channel (zeros before any row is seen).
  std::vector<double> AbsMean() const;
  size_t MemoryBytes() const;
};

}  // namespace bitlens::quant
