// quant/grid: the view of every quantized format that the algorithms share.
// Each group of a packed row is an affine grid, w ≈ offset + scale · q with an
// integer code q in [0, qmax]; GPTQ, HQQ, AWQ and ternary choose grids and
// codes, and the format alone decides how grids are stored (f16, double-
// quantized per super-block, ...) and how codes are packed.
#pragma once

#include <cstdint>
#include <span>

#include "quant/formats.h"

namespace bitlens::quant {

// The grid of one group as the format stores it (already rounded to the
// stored precision): value(q) = offset + scale · q, equal to the format's
// dequantization up to f32 rounding.
struct GroupGrid {
  float scale = 0.0f;
  float offset = 0.0f;
};

// True for formats with codes and grids (everything but f16/bf16 passthrough).
bool HasGrid(const FormatInfo& f);
// Largest code: 3 for 2-bit, 7 for 3-bit, 15 for 4-bit, 254 for w8 (offset
// -127·scale), 2 for ternary (offset -scale).
int QMax(const FormatInfo& f);
// Groups per row of k weights; the last group may be partial (ragged k).
int64_t NumGroups(const FormatInfo& f, int64_t k);

// Grids of one row w[k] chosen by round-to-nearest with `search`, rounded to
// the stored precision (including double quantization of scales/zeros).
// grids: NumGroups(f, k) entries.
void ChooseRowGrids(const FormatInfo& f, const float* w, int64_t k, RangeSearch search,
                    GroupGrid* grids);
// Shrink factors the MSE clip search tries on each group's range (about its
// midpoint for min formats, max|w| for symmetric ones); 1.0 (plain min-max) first.
std::span<const float> ClipShrinkGrid();
// Rounds float proposals (e.g. HQQ's optimized scale and offset) in place to
// what the format can store; for double-quantized formats this quantizes the
// row's group scales/offsets per super-block.
void RoundRowGrids(const FormatInfo& f, int64_t k, GroupGrid* grids);

// The code of the grid point nearest to w (ties away from zero), clamped to [0, qmax].
uint8_t NearestCode(const GroupGrid& grid, int qmax, float w);
inline float GridValue(const GroupGrid& grid, int code) { return grid.offset + grid.scale * code; }
// Σ (w[i] − GridValue(grid, NearestCode(grid, qmax, w[i])))² over w[0, len), in f64.
double SquaredErrorOnGrid(const GroupGrid& grid, int qmax, const float* w, int64_t len);

// Packs codes[k] (one per weight, in [0, qmax]) under grids (as returned by
// ChooseRowGrids/RoundRowGrids) into RowBytes(f, k) bytes at out. Decoding the
// result gives back the same codes and grids.
void EncodeRow(const FormatInfo& f, const GroupGrid* grids, const uint8_t* codes, int64_t k,
               uint8_t* out);
// The inverse of EncodeRow: grids (NumGroups entries) and codes[k] of one packed row.
void DecodeRow(const FormatInfo& f, const uint8_t* row, int64_t k, GroupGrid* grids,
               uint8_t* codes);

}  // namespace bitlens::quant
