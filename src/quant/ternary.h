// quant/ternary: least-squares grids for every format, and the exact optimum
// for the ternary grid {-1, 0, +1}·scale; with GPTQ they give ternary and
// stretched 2-bit quantization through the same machinery as the other formats.
#pragma once

#include <cstdint>

#include "quant/formats.h"
#include "quant/grid.h"

namespace bitlens::quant {

// The grid family of a format, read off ChooseRowGrids on positive data:
// symmetric grids have offset = −center · scale (ternary 1, stretched 1.5,
// w8 127); asymmetric grids have a free offset (center < 0).
struct GridFamily {
  int qmax = 0;
  float center = -1.0f;
  bool symmetric() const { return center >= 0.0f; }
  bool ternary() const { return symmetric() && qmax == 2; }
};
GridFamily FormatGridFamily(const FormatInfo& f);

// The scale minimising Σ (w − scale·t)² over ternary t ∈ {-1, 0, 1}: with |w|
// sorted descending and S_j the sum of the j largest, the optimum keeps the j
// maximising S_j² / j and scale = S_j / j (TWN's threshold rule made exact).
float OptimalTernaryScale(const float* w, int64_t len);

// GridMethod::kMseRefine on the row slice w[len] (whole grid units): start from
// the clipping search, refine each group by alternating nearest codes and the
// least-squares grid (scale, or scale and offset), use the exact optimum for
// ternary grids; rounded to the stored precision, and per grid unit never worse
// in squared error than the clipping search.
void RefinedRowGrids(const FormatInfo& f, const float* w, int64_t len, GroupGrid* grids);

// Grids of the row slice w[len] (whole grid units) minimising the weighted
// error Σ d_i (w_i − ŵ_i)² over the clipping candidates (ranges shrunk 1.00 …
// 0.30), d ≥ 0 per weight — GPTQ passes d = diag(XᵀX), so the range fits the
// inputs that carry the most signal. Rounded to the stored precision; per grid
// unit the result is never worse in that weighted error than `base` (grids of
// the same slice, already rounded).
void DiagWeightedRowGrids(const FormatInfo& f, const float* w, const float* d, int64_t len,
                          const GroupGrid* base, GroupGrid* grids);

// Σ (w − Ŵ)² of the slice w[len] under grids with nearest codes.
double SliceSquaredError(const FormatInfo& f, const float* w, int64_t len, const GroupGrid* grids);

}  // namespace bitlens::quant
