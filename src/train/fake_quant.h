// train/fake_quant: the quantize→dequantize of a weight matrix in the forward
// pass of quantization-aware training, exactly the grid of a deployed format
// (quant/formats, quant/grid), with the straight-through estimator for the
// weights and LSQ-style gradients for the learnable per-group scales and offsets.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "quant/formats.h"
#include "quant/grid.h"

namespace bitlens::train {

// Learnable grids of one [n, k] weight: group g of row r has
// value(q) = offset[r·G + g] + scale[r·G + g] · q, q in [0, QMax(format)],
// G = quant::NumGroups(format, k).
struct FakeQuantGrids {
  const quant::FormatInfo* format = nullptr;
  int64_t n = 0, k = 0;
  std::vector<float> scale, offset;
  std::vector<float> dscale, doffset;  // gradients, accumulated by FakeQuantBackward
};

// Grids initialized from a post-training quantizer's choice (quant::ChooseRowGrids
// with the MSE clip search), or from an already packed row set.
Result<FakeQuantGrids> InitGridsRtn(const quant::FormatInfo& format, const float* w, int64_t n, int64_t k);
Result<FakeQuantGrids> InitGridsFromPacked(const quant::FormatInfo& format, const uint8_t* packed, int64_t n,
                                           int64_t k);

// wq[n, k] = grid value of the nearest code of w under the grids rounded to the
// format's stored precision (so wq equals what the deployed kernel dequantizes).
void FakeQuantForward(const FakeQuantGrids& grids, const float* w, float* wq);
// STE: dw += dwq where w lies inside its group's grid range, 0 where clamped.
// LSQ: dscale/doffset accumulate ∂wq/∂scale · dwq and ∂wq/∂offset · dwq.
void FakeQuantBackward(FakeQuantGrids& grids, const float* w, const float* dwq, float* dw);

// Packs w under the (rounded) grids into n rows of quant::RowBytes(format, k)
// bytes: the deployed weight, whose dequantization equals FakeQuantForward's wq.
void PackWithGrids(const FakeQuantGrids& grids, const float* w, uint8_t* out);

}  // namespace bitlens::train
