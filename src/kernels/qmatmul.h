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
// W·A16 (the default): f32 activations, weights decoded to f32 in registers,
// f32 accumulation (kernels/qmatmul_a16); f16/bf16 run the float MatMul;
// formats without a kernel run the table's scalar vec_dot_ref. Equal to
// quant::QMatMulRef within f32 summation error, and independent of the
// thread count (bit-identical for 1, 2, ... threads).
void QMatMul(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
             int64_t k, const float* bias, float* y);

// True if QMatMul has a SIMD path for f (otherwise it runs the reference
// row loop, still correct and parallel).
bool QMatMulHasFastPath(const quant::FormatInfo& f);

}  // namespace bitlens::kernels
