// quant/rtn: reference round-to-nearest quantizers for every format in the
// table (min-max range, or an MSE-optimal clipping search for group formats).
// Scalar on purpose: these are the truth later SIMD kernels are tested against.
#pragma once

#include <cstdint>
#include <span>

#include "base/status.h"
#include "quant/formats.h"

namespace bitlens::quant {

// w: [n, k] f32, row-major (n output channels, k inputs). out must hold exactly
// n * RowBytes(f, k) bytes. kMseClip only changes group-wise formats; per-row
// and passthrough formats ignore it.
Status QuantizeRowsRef(const FormatInfo& f, const float* w, int64_t n, int64_t k,
                       RangeSearch search, std::span<uint8_t> out);
// in: n * RowBytes(f, k) bytes -> out: [n, k] f32.
Status DequantizeRowsRef(const FormatInfo& f, std::span<const uint8_t> in, int64_t n, int64_t k,
                         float* out);

// Shrink factors the clipping search tries on each group's [min, max] range
// (shrunk about its midpoint); 1.0 (plain min-max) is always first.
std::span<const float> ClipShrinkGrid();

// Row functions the format table points at (k already validated).
void QuantizeRowGroupAsymRef(const FormatInfo& f, const float* w, int64_t k, RangeSearch search,
                             uint8_t* out);
void DequantizeRowGroupAsymRef(const FormatInfo& f, const uint8_t* in, int64_t k, float* out);
void QuantizeRowGroupStretchedRef(const FormatInfo& f, const float* w, int64_t k,
                                  RangeSearch search, uint8_t* out);
void DequantizeRowGroupStretchedRef(const FormatInfo& f, const uint8_t* in, int64_t k, float* out);
void QuantizeRowW8Ref(const FormatInfo& f, const float* w, int64_t k, RangeSearch search,
                      uint8_t* out);
void DequantizeRowW8Ref(const FormatInfo& f, const uint8_t* in, int64_t k, float* out);
void QuantizeRowF16Ref(const FormatInfo& f, const float* w, int64_t k, RangeSearch search,
                       uint8_t* out);
void DequantizeRowF16Ref(const FormatInfo& f, const uint8_t* in, int64_t k, float* out);
void QuantizeRowBf16Ref(const FormatInfo& f, const float* w, int64_t k, RangeSearch search,
                        uint8_t* out);
void DequantizeRowBf16Ref(const FormatInfo& f, const uint8_t* in, int64_t k, float* out);

}  // namespace bitlens::quant
