// quant/qmatmul_ref: scalar reference GEMV/GEMM straight from packed weight
// blocks (no dequantized copy). Its accumulation order is the contract later
// SIMD kernels reproduce; see docs/quantization.md.
#pragma once

#include <cstdint>

#include "quant/formats.h"

namespace bitlens::quant {

// y[m, n] = x[m, k] · W[n, k]^T + bias[n]   (bias may be null)
// packed_w: n * RowBytes(format, k) bytes (rows as QuantizeRowsRef writes them).
// Callers validate k with CheckRowLength; no allocation, never fails.
// Accumulation, all in f32: for each row, per group of g weights in ascending
// index order (a ragged last group sums only its weights i < k), acc = Σ x_i·c_i
// with c_i the integer code (q − 1.5 for the stretched grid, t − 1 for
// ternary) and, for min formats, sx = Σ x_i; the group adds scale·acc +
// min·sx to the row sum, groups in ascending order; bias last. Double-quantized
// groups use scale = d·sc and min = m0 + dm·mc, computed in that f32 order.
// w8: one f32 sum Σ x_i·q_i over the row, times the row scale. f16/bf16: each
// weight decoded to f32, one f32 sum over the row.
void QMatMulRef(const float* x, int64_t m, const FormatInfo& format, const uint8_t* packed_w,
                int64_t n, int64_t k, const float* bias, float* y);

// vec_dot entries of the format table: Σ_i x[i] · w[i] over one packed row of
// k weights, in the order documented above.
float VecDotGroupAsymRef(const FormatInfo& f, const uint8_t* row, const float* x, int64_t k);
float VecDotDqRef(const FormatInfo& f, const uint8_t* row, const float* x, int64_t k);
// Scale-only groups: the stretched 2-bit grid and ternary.
float VecDotSymmetricRef(const FormatInfo& f, const uint8_t* row, const float* x, int64_t k);
float VecDotW8Ref(const FormatInfo& f, const uint8_t* row, const float* x, int64_t k);
float VecDotF16Ref(const FormatInfo& f, const uint8_t* row, const float* x, int64_t k);
float VecDotBf16Ref(const FormatInfo& f, const uint8_t* row, const float* x, int64_t k);

}  // namespace bitlens::quant
