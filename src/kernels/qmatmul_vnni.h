// kernels/qmatmul_vnni: the W2A8 kernel for CPUs with 512-bit u8×s8 dot
// products (AVX-512 VNNI, Highway's AVX3_DL target): 2- and 4-bit plane formats read
// in place, 16 output rows per tile, one output row per vpdpbusd lane.
#pragma once

#include <cstdint>

#include "quant/formats.h"

namespace bitlens::kernels {

// True when the VNNI kernel handles format f at row length k (w2g64, w2g128,
// w2sg64, w2g32dq, w2g64dq, w4g32, w4g64; 0 < k <= kA8MaxK), whether or not
// this CPU runs it.
bool VnniSupports(const quant::FormatInfo& f, int64_t k);

// True when the CPU (and Highway's chosen target) runs the VNNI kernel.
bool VnniAvailable();

// y[m, n] = x[m, k] · W[n, k]^T + bias[n] with int8 activations, equal to
// QMatMulA8Ref bit for bit for any thread count. w: n packed rows of
// quant::RowBytes(f, k) bytes. Returns false and touches nothing unless
// VnniSupports(f, k) and VnniAvailable(). No allocation; splits tiles of 16
// output rows over the thread pool.
bool QMatMulVnni(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                 int64_t k, const float* bias, float* y);

}  // namespace bitlens::kernels
