// quant/awq: activation-aware per-input-channel scaling (AWQ, Lin et al. 2023).
// Weights sharing one input are quantized as W·diag(s) and the input is divided
// by s, which the pipeline folds into the preceding op (a norm's weight or the
// previous linear's output rows); s = mean|x|^α with α searched on a grid.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "quant/formats.h"
#include "quant/layer_stats.h"
#include "quant/quantize_layer.h"

namespace bitlens::quant {

// One weight matrix [n, k] reading the shared input (q, k, v; or gate, up).
struct AwqWeight {
  const float* w = nullptr;
  int64_t n = 0;
};

struct AwqOptions {
  int grid_points = 20;  // α ∈ {0, 1/20, …, 19/20}; α = 0 is plain RTN (s = 1)
  GridMethod grid = GridMethod::kMseClip;  // grids of the trial quantization (as the final one)
  HqqOptions hqq;                         // when grid is kHqq
  // Rows (over all matrices, evenly spaced in each) on which the output error
  // tr(ΔW H ΔWᵀ) is measured per α; 0 = all. Cost: 2·rows·k² flops per α.
  int64_t sample_rows = 128;
};

struct AwqResult {
  std::vector<float> scales;  // [k] s: quantize W·diag(s), feed x·diag(1/s)
  float alpha = 0.0f;
  double error_plain = 0.0;   // Σ tr(ΔW H ΔWᵀ) on the sampled rows at α = 0
  double error_scaled = 0.0;  // the same at the chosen α (≤ error_plain)
  std::vector<double> error_by_alpha;  // grid_points entries
};

// Searches α for the matrices in `weights` (all [n_i, k]) on stats (k inputs).
// Errors: empty list, stats.k != k, stats without rows, passthrough format.
Status AwqSearchScales(const FormatInfo& f, std::span<const AwqWeight> weights, int64_t k,
                       const LayerStats& stats, const AwqOptions& options, AwqResult* result);

// w [n, k] ← w · diag(s): what is quantized after the search.
void ScaleInputChannels(float* w, int64_t n, int64_t k, const float* s);
// The statistics of the scaled input x · diag(1/s) (for GPTQ after AWQ):
// xtx_ij / (s_i s_j), |x|_j / s_j.
LayerStats ScaledStats(const LayerStats& stats, const float* s);

}  // namespace bitlens::quant
