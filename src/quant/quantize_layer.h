// quant/quantize_layer: the one entry point that quantizes a linear layer's
// weight W [n, k] into a packed format with RTN, HQQ or GPTQ, and measures the
// error (relative output error from calibration statistics, else weight MSE).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "base/status.h"
#include "quant/formats.h"
#include "quant/grid.h"
#include "quant/layer_stats.h"

namespace bitlens::quant {

enum class QuantMethod {
  kRtn,   // round to nearest under grids chosen by QuantizeOptions::grid
  kHqq,   // calibration-free half-quadratic optimisation of each group's grid
  kGptq,  // Hessian-aware error compensation from LayerStats (needs stats)
};
// "rtn" | "hqq" | "gptq" (AWQ is a separate scale search, see quant/awq.h).
Result<QuantMethod> ParseQuantMethod(std::string_view name);
const char* QuantMethodName(QuantMethod m);

// How the grid (scale, offset) of each group is chosen from its weights.
enum class GridMethod {
  kMinMax,     // spans [min, max] (symmetric grids: max |w|)
  kMseClip,    // the format's clipping search (ClipShrinkGrid), lowest squared error
  kMseRefine,  // kMseClip, then alternating least squares of grid and codes; for the
               // ternary grid the exact optimum (sorted |w| prefix search)
  kHqq,        // HQQ proximal optimisation (HqqOptions)
};

// HQQ (Badri & Shaji 2023): minimise ‖W − Ŵ‖_p^p (p < 1) by half-quadratic
// splitting; the paper's parameters.
struct HqqOptions {
  float lp_norm = 0.7f;
  float beta = 10.0f;   // initial penalty weight
  float kappa = 1.01f;  // beta grows by this factor per iteration
  int iters = 20;
  // Start from the clipping search's grids instead of min-max (the paper's
  // start). The iterations then refine an already good grid: lower weight MSE
  // than the clip search for almost every format (docs/quantization.md).
  bool start_from_clip = true;
};

// GPTQ (Frantar et al. 2022).
struct GptqOptions {
  float percdamp = 0.01f;  // dampening: percdamp · mean(diag H) added to diag H
  int block_size = 128;    // lazy batch width (raised to fit the format's grid unit)
  // Quantize columns by decreasing diag H (the inputs with the most energy
  // first, while there is the most freedom left to compensate them). Implies
  // static grids, so the stored group layout stays along k. The default: on
  // inputs with outlier channels it lowers the output error 1.5-5x against the
  // natural order (docs/quantization.md, "Algorithms").
  bool act_order = true;
  // Without act_order: grids from the original weights before any update
  // (true), or chosen on the error-compensated weights when each group starts
  // (false). The latter lets compensation inflate min-max ranges.
  bool static_groups = false;
  // After options.grid, re-choose each group's range by the clipping candidates
  // under the error Σ H_ii (w_i − ŵ_i)², H = XᵀX (DiagWeightedRowGrids): the
  // range then fits the inputs that carry the most signal. With outlier input
  // channels this roughly halves GPTQ's output error (docs/quantization.md).
  bool weighted_grids = true;
};

struct QuantizeOptions {
  GridMethod grid = GridMethod::kMseClip;  // RTN's and GPTQ's grid choice
  HqqOptions hqq;
  GptqOptions gptq;
  // Rows of W used to compute the relative output error (evenly spaced);
  // 0 = all rows. The metric costs 2·rows·k² flops.
  int64_t error_rows = 512;
};

struct LinearQuantResult {
  // ‖(W − Ŵ) X‖² / ‖W X‖² = tr(ΔW H ΔWᵀ) / tr(W H Wᵀ), H = XᵀX; -1 without stats.
  double rel_output_error = -1.0;
  int64_t error_rows_used = 0;  // rows the output error was measured on
  double weight_mse = 0.0;      // mean (W − Ŵ)² over all n·k weights
  double seconds = 0.0;         // wall time of the quantization (not the metric)
};

// w: [n, k] f32 row-major; out: exactly n · RowBytes(format, k) bytes.
// stats: calibration of this layer's input (required for kGptq; when given,
// the relative output error is measured). result may be null.
// Errors: passthrough formats (f16/bf16 have no grids), shape or buffer size
// mismatch, stats.k != k, GPTQ without stats, H not positive definite after
// dampening (raise percdamp).
// Runs on the process thread pool (ParallelFor over rows) and BLAS's threads:
// call it from one thread, never from inside a ParallelFor job.
Status QuantizeLinear(QuantMethod method, const FormatInfo& format, const float* w, int64_t n,
                      int64_t k, const LayerStats* stats, const QuantizeOptions& options,
                      std::span<uint8_t> out, LinearQuantResult* result);

// The grids of one row slice w[len] (whole grid units, see GridUnit) chosen
// with `method`, rounded to the stored precision. grids: NumGroups(f, len).
void ChooseGrids(const FormatInfo& f, GridMethod method, const HqqOptions& hqq, const float* w,
                 int64_t len, GroupGrid* grids);

// Weights whose grids the format chooses together: one block (a double-
// quantized super-block), or the whole row when a row header holds a shared
// scale (w8). Grids of different units are independent.
int64_t GridUnit(const FormatInfo& f, int64_t k);

// Relative output error tr(D H Dᵀ) / tr(W H Wᵀ), D = W − w_hat, H = stats.xtx,
// over at most max_rows evenly spaced rows (0 = all). rows_used may be null.
// Error when stats.k != k or stats has seen no rows.
Result<double> RelativeOutputError(const float* w, const float* w_hat, int64_t n, int64_t k,
                                   const LayerStats& stats, int64_t max_rows,
                                   int64_t* rows_used = nullptr);

}  // namespace bitlens::quant
