// kernels/qmatmul: GEMV (decode) and GEMM (prefill) over packed quantized
// weights, every format of quant/formats. quant::QMatMulRef is the reference
// these are tested against; work is split by output rows over the pool.
#pragma once

#include <cstdint>

#include "quant/formats.h"

namespace bitlens::kernels {

// y[m, n] = x[m, k] · W[n, k]^T + bias[n]   (bias may be null)
// w: n packed rows of quant::RowBytes(f, k) bytes. No allocation, never fails:
// callers validate k with quant::CheckRowLength.
void QMatMul(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
             int64_t k, const float* bias, float* y);

}  // namespace bitlens::kernels
