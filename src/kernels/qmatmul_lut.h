// kernels/qmatmul_lut: lookup-table GEMV/GEMM in the style of T-MAC (Wei et
// al. 2024) for 2-bit and ternary weights: per x row, sums of int8 activations
// are tabulated for every code pattern, and packed code bits index the tables.
#pragma once

#include <cstdint>

#include "quant/formats.h"

namespace bitlens::kernels {

// Formats with a table kernel: the 2-bit plane formats (w2g32/64/128,
// w2sg32/64) and ternary t1, for 0 < k <= kA8MaxK.
bool LutSupports(const quant::FormatInfo& f, int64_t k);

// Activation block of the table kernel: the int8 scale of x is shared by the
// weights one table entry mixes. 2-bit: a code byte's low nibble holds
// weights j and Q + j of a group (Q = g/4), its high nibble 2Q + j and 3Q + j,
// so blocks of 32 work for g <= 64 and g = 128 needs 64; t1 packs five trits
// spread over its 256-weight group into a byte, so the block is the group.
int LutActivationBlock(const quant::FormatInfo& f);

// The result of both functions below is QMatMulInt8BlocksRef(..., block =
// LutActivationBlock(f)) (qmatmul_a8.h) bit for bit; for g <= 64 that is
// QMatMulA8Ref itself. The integer sums are exact whatever the order, so only
// the per-block f32 steps, kept in the reference's order, fix the result.

// Scalar reference that really uses tables:
//   2-bit: per code byte j of a group, two 16-entry int16 tables
//     T_lo[c0 + 4·c1] = (c0 − 2)·xq[j] + (c1 − 2)·xq[Q + j]
//     T_hi[c0 + 4·c1] = (c0 − 2)·xq[2Q + j] + (c1 − 2)·xq[3Q + j]
//   indexed by the byte's nibbles; isum_b = Σ lookups + 2·bsum_b (codes are
//   centred on 2 so a block's sum of up to 32 lookups stays inside int16).
//   t1: per trit byte, a 256-entry int16 table of Σ_p (t_p − 1)·xq[...] over
//   its five (or four) trits, indexed by the byte itself; isum = Σ + bsum.
// Allocates (a test oracle).
void QMatMulLutRef(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                   int64_t k, const float* bias, float* y);

// The kernel. 2-bit: 16 output rows per 128-bit block of a vector (16, 32
// or 64 rows on SSE4, AVX2, AVX-512), their code bytes transposed in
// registers so one byte shuffle (TableLookupBytes) looks up one table for all
// rows; tables are built per worker in chunks of kLutChunk weights on its
// stack. t1: scalar lookups, one table per trit byte. No allocation; output
// rows split over the pool. Requires LutSupports(f, k).
void QMatMulLut(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                int64_t k, const float* bias, float* y);

}  // namespace bitlens::kernels
