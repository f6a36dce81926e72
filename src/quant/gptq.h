// quant/gptq: GPTQ (Frantar et al. 2022) for every grid format: columns are
// quantized in order and each rounding error is spread over the columns not
// yet quantized through the Cholesky factor of the inverse Hessian H = 2XᵀX/N.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/status.h"
#include "quant/formats.h"
#include "quant/layer_stats.h"
#include "quant/quantize_layer.h"

namespace bitlens::quant {

// U [k, k] row-major, upper triangular (the lower triangle is scratch), with
// UᵀU = (P H Pᵀ + λI)⁻¹: H = 2·XᵀX/N with dead inputs (H_ii = 0) given H_ii = 1,
// P the column order `perm` (empty = identity: position i holds input perm[i]),
// λ = percdamp · mean(diag H). InvalidArgument when the damped H is not
// positive definite. Costs k³/3 + k³/3 flops (Cholesky of the reversed matrix,
// then a triangular inverse: no explicit inverse is formed).
Status GptqInverseHessianFactor(const LayerStats& stats, float percdamp,
                                std::span<const int64_t> perm, std::vector<float>* u);

// The column order of act_order: inputs by decreasing H_ii (ties by index).
std::vector<int64_t> ActOrderPermutation(const LayerStats& stats);

// w: [n, k] f32; out: n · RowBytes(f, k) bytes. Shapes are checked by the
// caller (QuantizeLinear). Grids per group are chosen with options.grid.
Status GptqQuantize(const FormatInfo& f, const float* w, int64_t n, int64_t k,
                    const LayerStats& stats, const QuantizeOptions& options,
                    std::span<uint8_t> out);

}  // namespace bitlens::quant
