// quant/hqq: calibration-free grids by half-quadratic quantization (HQQ,
// Badri & Shaji 2023): per group, alternate an lp-norm (p < 1) shrinkage of the
// rounding error with a closed-form update of the zero point (or, for grids
// without a free zero point, of the scale).
#pragma once

#include <cstdint>

#include "quant/formats.h"
#include "quant/grid.h"
#include "quant/quantize_layer.h"

namespace bitlens::quant {

// Grids of the row slice w[len] (whole grid units), rounded to the stored
// precision. grids: NumGroups(f, len) entries.
void HqqRowGrids(const FormatInfo& f, const HqqOptions& options, const float* w, int64_t len,
                 GroupGrid* grids);

// The lp shrinkage (proximal operator of |x|^p / β): sign(x) · max(|x| − |x|^(p−1)/β, 0).
float HqqShrink(float x, float beta, float lp_norm);

}  // namespace bitlens::quant
