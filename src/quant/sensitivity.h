// quant/sensitivity: how much one linear layer's output changes when its
// weights alone are quantized to a candidate format, from calibration
// statistics H = Σ xᵀx (quant::LayerStats):
//   rel_err(f) = trace(ΔW H ΔWᵀ) / trace(W H Wᵀ) = ‖ΔW X‖² / ‖W X‖²,   ΔW = Q_f(W) − W
// Q_f is round-to-nearest with the MSE clip search: cheap, and GPTQ lowers
// every candidate's error by a similar factor, so the ranking holds.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "quant/formats.h"
#include "quant/layer_stats.h"

namespace bitlens::quant {

struct SensitivityOptions {
  // Rows of W evaluated (evenly strided over n): the cost is max_rows · k²
  // multiply-adds per candidate (k = 8192: 17 GFLOP at 256 rows). 0 = all rows.
  int64_t max_rows = 256;
};

// w [n, k] f32; stats.k == k with its upper triangle filled (as accumulated),
// or null for H = I (plain weight-space error, when there is no calibration).
// One relative error per candidate; +inf where the format cannot hold rows of
// length k. InvalidArgument on mismatched shapes.
Result<std::vector<double>> RelativeOutputErrors(std::span<const FormatInfo* const> candidates, const float* w,
                                                 int64_t n, int64_t k, const LayerStats* stats,
                                                 const SensitivityOptions& options = {});

// Σ_r d_r H d_rᵀ over rows d [rows, k], reading H's upper triangle only.
double QuadraticFormRows(const float* d, int64_t rows, int64_t k, const LayerStats* stats);

}  // namespace bitlens::quant
