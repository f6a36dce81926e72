// kernels/qmatmul_a8: the W2A8 path of QMatMul. Activations are quantized on
// the fly to int8 in blocks of 32 along k, dotted with the integer weight
// codes exactly in int32, and each weight group's f32 scale/offset applied.
#pragma once

#include <cstdint>
#include <string_view>

#include "quant/formats.h"

namespace bitlens::kernels {

// Which activations QMatMul multiplies packed weights with: kF32 (W2A16, the
// default: weights expanded to f32 in registers), kInt8 (W2A8, this file), or
// kInt8Lut: decode (m = 1) of the formats with a table kernel runs it
// (qmatmul_lut.h: int8 blocks of LutActivationBlock — 64 for w2g128, 256 for
// t1), everything else as kInt8.
// Process-wide; set it before running a model, not while a QMatMul runs.
enum class QActivations { kF32, kInt8, kInt8Lut };
void SetQActivations(QActivations a);
QActivations GetQActivations();
// "a16" / "a8" / "a8lut" (as `bitlens run --activations` spells them).
const char* QActivationsName(QActivations a);
// The inverse of QActivationsName; false for any other spelling.
bool ParseQActivations(std::string_view name, QActivations* a);

// Activation block: 32 consecutive x values share one f32 scale
// d = max|x| / 127 and are stored as round-to-nearest-even(x · 127/max|x|)
// in [-127, 127]. Blocks of 32 keep an outlier channel from coarsening more
// than 31 neighbours (measured in docs/kernels.md, "W2A8").
constexpr int kA8Block = 32;
// Longest row the int8 path takes: the quantized activations live in a fixed
// stack buffer of kA8MaxK bytes (plus 12 bytes per block) on the calling
// thread, so nothing is allocated. Longer rows use the f32 path.
constexpr int64_t kA8MaxK = 32768;

// True when the int8 path handles format f at row length k: f has integer
// codes and per-group grids (quant/grid.h) with a group that is a multiple of
// kA8Block or the whole row, and 0 < k <= kA8MaxK. QMatMul sends the other
// cases to the f32 path.
bool A8Supports(const quant::FormatInfo& f, int64_t k);

// One x row [k] -> xq [ceil(k/32)·32] (zero past k), per block b the scale
// d[b] and bsum[b] = Σ xq over the block. The definition the kernels follow.
void QuantizeActivationsA8Ref(const float* x, int64_t k, int8_t* xq, float* d, int32_t* bsum);

// y[m, n] = x[m, k] · W[n, k]^T + bias[n] with int8 activations; the result is
// defined by this scalar reference. With grids (scale_G, offset_G) and codes
// q_i from quant::DecodeRow, per weight group G (blocks b in ascending order):
//   isum_b = Σ_{i in b, i < k} xq_i · q_i                 (exact int32)
//   acc_G  = Σ_b d_b · float(isum_b)                       (f32, b ascending)
//   sx_G   = Σ_b d_b · float(bsum_b)                       (f32, b ascending)
//   y      = Σ_G (scale_G · acc_G + offset_G · sx_G) + bias (f32, G ascending)
// Every product and sum is rounded to f32 on its own (no fused multiply-add).
// Requires A8Supports(f, k). Allocates (a test oracle, not a kernel).
void QMatMulA8Ref(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                  int64_t k, const float* bias, float* y);

// The same definition with activation blocks of `block` values (a multiple of
// 32 that divides the group, or the group itself) instead of 32: the lookup-
// table kernel (qmatmul_lut) uses it where its tables span more than 32 values.
void QuantizeActivationBlocksRef(const float* x, int64_t k, int block, int8_t* xq, float* d, int32_t* bsum);
void QMatMulInt8BlocksRef(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                          int64_t k, const float* bias, float* y, int block);

// The Highway kernel: equals QMatMulA8Ref bit for bit, for any thread count.
// w: n packed rows of quant::RowBytes(f, k) bytes. Requires A8Supports(f, k).
// No allocation; splits output rows over the thread pool.
// On CPUs with AVX-512 VNNI the formats of qmatmul_vnni (w2g64, w2g128,
// w2sg64, w2g32dq, w2g64dq, w4g32, w4g64) run that kernel, any m. Otherwise
// decode (m = 1, n >= 64) of w2g32/w2g64/w2sg32/w2sg64 runs the table kernel
// QMatMulLut. Both give the same result (docs/kernels.md).
void QMatMulA8(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
               int64_t k, const float* bias, float* y);
// The integer-dot kernel alone, whatever the shape (same result).
void QMatMulA8Dots(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                   int64_t k, const float* bias, float* y);

}  // namespace bitlens::kernels
