// kernels/qmatmul_a16: the W·A16 fast path of QMatMul — f32 activations,
// packed weights decoded to f32 in registers, f32 accumulation. One Highway
// kernel per code layout (2-bit, 4-bit group blocks, w8 rows).
#pragma once

#include <cstdint>

#include "quant/formats.h"

namespace bitlens::kernels {

// True if QMatMulA16 has a kernel for this format (matched by name and
// checked against the block geometry the kernel was written for).
bool QMatMulA16Supports(const quant::FormatInfo& f);

// y[m, n] = x[m, k] · W[n, k]^T + bias[n] (bias may be null) on the calling
// thread, for output rows [o_begin, o_end) only. w: n packed rows of
// quant::RowBytes(f, k) bytes; any k > 0 (a partial last block is summed over
// i < k only). Requires QMatMulA16Supports(f). No allocation.
//
// Determinism: each y[r, o] is computed by the same sequence of operations
// (four vector accumulators fed in a fixed order along k, their sum, a lane
// sum, the scalar tail of a partial block, the w8 row scale, the bias)
// whatever tile, row range or thread it falls in, so results do not depend on
// the thread count. They do depend on the SIMD target (lane count).
void QMatMulA16Rows(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w,
                    int64_t n, int64_t k, const float* bias, int64_t o_begin, int64_t o_end,
                    float* y);

}  // namespace bitlens::kernels
