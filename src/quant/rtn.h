// quant/rtn: reference round-to-nearest quantizers for every format in the
// table (min-max range, or an MSE-optimal clipping search for group formats).
// Scalar on purpose: these are the truth later SIMD kernels are tested against.
#pragma once

#include <cstdint>
#include <span>

#include "base/status.h"
#include "quant/formats.h"
#include "quant/grid.h"

namespace bitlens::quant {

// w: [n, k] f32, row-major (n output channels, k inputs). out must hold exactly
// n * RowBytes(f, k) bytes. kMseClip only changes group-wise formats; per-row
// and passthrough formats ignore it.
Status QuantizeRowsRef(const FormatInfo& f, const float* w, int64_t n, int64_t k,
                       RangeSearch search, std::span<uint8_t> out);
// in: n * RowBytes(f, k) bytes -> out: [n, k] f32.
Status DequantizeRowsRef(const FormatInfo& f, std::span<const uint8_t> in, int64_t n, int64_t k,
                         float* out);

// Row functions the format table points at (k already validated).
// Every format with a grid quantizes through quant/grid: ChooseRowGrids, then
// NearestCode per weight, then EncodeRow.
void QuantizeRowGridRef(const FormatInfo& f, const float* w, int64_t k, RangeSearch search,
                        uint8_t* out);
void DequantizeRowGroupAsymRef(const FormatInfo& f, const uint8_t* in, int64_t k, float* out);
void DequantizeRowDqRef(const FormatInfo& f, const uint8_t* in, int64_t k, float* out);
// Scale-only groups: the stretched 2-bit grid and ternary.
void DequantizeRowSymmetricRef(const FormatInfo& f, const uint8_t* in, int64_t k, float* out);
void DequantizeRowW8Ref(const FormatInfo& f, const uint8_t* in, int64_t k, float* out);
void QuantizeRowF16Ref(const FormatInfo& f, const float* w, int64_t k, RangeSearch search,
                       uint8_t* out);
void DequantizeRowF16Ref(const FormatInfo& f, const uint8_t* in, int64_t k, float* out);
void QuantizeRowBf16Ref(const FormatInfo& f, const float* w, int64_t k, RangeSearch search,
                        uint8_t* out);
void DequantizeRowBf16Ref(const FormatInfo& f, const uint8_t* in, int64_t k, float* out);

}  // namespace bitlens::quant
