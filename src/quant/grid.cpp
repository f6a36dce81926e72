// quant/grid: every quantized format as per-group affine grids. Choosing a
// row's grids (min-max or MSE clip search), rounding proposals to what the
// format stores, and packing/unpacking codes in the block layouts of formats.h.
#include "quant/grid.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "base/f16.h"
#include "quant/block_codes.h"
#include "quant/grid_dq.h"

namespace bitlens::quant {
namespace {

constexpr std::array<float, 71> MakeShrinkGrid() {
  std::array<float, 71> g{};
  for (int i = 0; i < 71; ++i) g[i] = 1.0f - 0.01f * static_cast<float>(i);  // 1.00 .. 0.30
  return g;
}
constexpr std::array<float, 71> kShrinkGrid = MakeShrinkGrid();

// Weights [begin, begin + len) of group b in a row of k (the last may be partial).
int64_t GroupBegin(const FormatInfo& f, int64_t b) { return b * f.group_size; }
int GroupLength(const FormatInfo& f, int64_t k, int64_t b) {
  if (f.group_size == 0) return static_cast<int>(k);
  return static_cast<int>(std::min<int64_t>(f.group_size, k - b * f.group_size));
}

inline float RoundToF16(float x) { return F16ToF32(F32ToF16(x)); }

// The grid a format stores for a float proposal, per encoding (no double
// quantization here: that needs the whole super-block, see RoundRowGrids).
GroupGrid RoundGroupGrid(const FormatInfo& f, GroupGrid g) {
  switch (f.encoding) {
    case ScaleEncoding::kF16ScaleMin:
      return {RoundToF16(g.scale), RoundToF16(g.offset)};
    case ScaleEncoding::kF16ScaleStretched: {
      // The offset is not stored: it is always -1.5 scale.
      const float s = RoundToF16(g.scale);
      return {s, -1.5f * s};
    }
    case ScaleEncoding::kF16ScaleTernary: {
      const float s = RoundToF16(g.scale);
      return {s, -s};
    }
    case ScaleEncoding::kF32ScalePerRow:
      return {g.scale, -127.0f * g.scale};  // symmetric int8: offset follows the scale
    case ScaleEncoding::kDoubleQuantScaleMin:  // per super-block, see DqRoundNearest
    case ScaleEncoding::kNone:
      break;
  }
  return g;
}

// Asymmetric grid spanning [lo, hi] with qmax steps.
GroupGrid RangeGrid(float lo, float hi, int qmax) {
  return {(hi - lo) / static_cast<float>(qmax), lo};
}

// Symmetric grids with their largest magnitude at max|w|: the stretched
// grid's ±1.5 scale, ternary's ±scale, w8's ±127 scale.
GroupGrid SymmetricGrid(const FormatInfo& f, float amax) {
  switch (f.encoding) {
    case ScaleEncoding::kF16ScaleStretched:
      return {amax / 1.5f, 0.0f};
    case ScaleEncoding::kF16ScaleTernary:
      return {amax, 0.0f};
    default:
      return {amax / 127.0f, 0.0f};
  }
}

GroupGrid RoundF16ScaleMin(GroupGrid g) { return {RoundToF16(g.scale), RoundToF16(g.offset)}; }

// The clip search's fast estimate of SquaredErrorOnGrid: the nearest code in
// f32 (a reciprocal multiply, round half up after clamping), branch-free so it
// vectorises, 8 partial sums. It can differ from NearestCode only where two
// codes are (nearly) equally near, so it ranks candidates like the exact error.
float EstimateError(const float* w, int len, const GroupGrid& g, int qmax) {
  if (!(g.scale > 0.0f) || !std::isfinite(g.scale)) {
    return static_cast<float>(SquaredErrorOnGrid(g, qmax, w, len));
  }
  const float inv = 1.0f / g.scale, top = static_cast<float>(qmax);
  float acc[8] = {};
  int i = 0;
  auto term = [&](float x) {
    const float t = std::min(std::max((x - g.offset) * inv, 0.0f), top);
    const float c = static_cast<float>(static_cast<int>(t + 0.5f));
    const float e = x - (g.offset + g.scale * c);
    return e * e;
  };
  for (; i + 8 <= len; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += term(w[i + j]);
  }
  for (; i < len; ++i) acc[0] += term(w[i]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// The MSE clip search: candidate(p) for every shrink factor p, ranked by the
// estimate; the winner replaces min-max only if its exact error is lower, so
// the search is never worse than min-max.
template <typename Candidate>
GroupGrid ClipSearch(const float* w, int len, int qmax, const GroupGrid& minmax, Candidate candidate) {
  GroupGrid best = minmax;
  float best_est = EstimateError(w, len, minmax, qmax);
  for (float p : kShrinkGrid) {
    const GroupGrid cand = candidate(p);
    const float est = EstimateError(w, len, cand, qmax);
    if (est < best_est) best_est = est, best = cand;
  }
  const bool better = SquaredErrorOnGrid(best, qmax, w, len) < SquaredErrorOnGrid(minmax, qmax, w, len);
  return better ? best : minmax;
}

GroupGrid ChooseGroupGrid(const FormatInfo& f, const float* w, int len, RangeSearch search) {
  const int qmax = QMax(f);
  if (f.encoding == ScaleEncoding::kF16ScaleMin) {
    return SearchAsymGrid(w, len, qmax, search, RoundF16ScaleMin);
  }
  float amax = 0.0f;
  for (int i = 0; i < len; ++i) amax = std::max(amax, std::fabs(w[i]));
  const GroupGrid minmax = RoundGroupGrid(f, SymmetricGrid(f, amax));
  // w8 is per row and keeps min-max: at 8 bits clipping gains little.
  if (search != RangeSearch::kMseClip || f.group_size == 0) return minmax;
  return ClipSearch(w, len, qmax, minmax,
                    [&](float p) { return RoundGroupGrid(f, SymmetricGrid(f, p * amax)); });
}

void PutF16(uint8_t* at, float x) {
  const uint16_t h = F32ToF16(x);
  std::memcpy(at, &h, 2);
}
float GetF16(const uint8_t* at) {
  uint16_t h;
  std::memcpy(&h, at, 2);
  return F16ToF32(h);
}

}  // namespace

GroupGrid SearchAsymGrid(const float* w, int len, int qmax, RangeSearch search,
                         GroupGrid (*round)(GroupGrid)) {
  const auto [lo_it, hi_it] = std::minmax_element(w, w + len);
  const float lo = *lo_it, hi = *hi_it;
  const GroupGrid minmax = round(RangeGrid(lo, hi, qmax));
  if (search != RangeSearch::kMseClip) return minmax;
  // Ranges shrunk about the midpoint: clipping the tails trades a few large
  // errors for a finer step everywhere else.
  const float mid = 0.5f * (lo + hi), half = 0.5f * (hi - lo);
  return ClipSearch(w, len, qmax, minmax,
                    [&](float p) { return round(RangeGrid(mid - p * half, mid + p * half, qmax)); });
}

std::span<const float> ClipShrinkGrid() { return kShrinkGrid; }

bool HasGrid(const FormatInfo& f) { return f.encoding != ScaleEncoding::kNone; }

int QMax(const FormatInfo& f) {
  switch (f.encoding) {
    case ScaleEncoding::kF32ScalePerRow:
      return 254;
    case ScaleEncoding::kF16ScaleTernary:
      return 2;
    case ScaleEncoding::kNone:
      return 0;
    default:
      return (1 << f.bits) - 1;
  }
}

int64_t NumGroups(const FormatInfo& f, int64_t k) {
  if (!HasGrid(f)) return 0;
  if (f.group_size == 0) return 1;
  return (k + f.group_size - 1) / f.group_size;
}

void ChooseRowGrids(const FormatInfo& f, const float* w, int64_t k, RangeSearch search,
                    GroupGrid* grids) {
  if (f.encoding == ScaleEncoding::kDoubleQuantScaleMin) {
    const int groups_per_block = f.block_weights / f.group_size;
    for (int64_t i0 = 0; i0 < k; i0 += f.block_weights, grids += groups_per_block) {
      const int len = static_cast<int>(std::min<int64_t>(f.block_weights, k - i0));
      ChooseDqSuperBlock(f, w + i0, len, search, grids);
    }
    return;
  }
  const int64_t groups = NumGroups(f, k);
  for (int64_t b = 0; b < groups; ++b) {
    grids[b] = ChooseGroupGrid(f, w + GroupBegin(f, b), GroupLength(f, k, b), search);
  }
}

void RoundRowGrids(const FormatInfo& f, int64_t k, GroupGrid* grids) {
  const int64_t groups = NumGroups(f, k);
  if (f.encoding == ScaleEncoding::kDoubleQuantScaleMin) {
    const int64_t per_block = f.block_weights / f.group_size;
    for (int64_t j0 = 0; j0 < groups; j0 += per_block) {
      RoundDqSuperBlock(QMax(f), grids + j0, static_cast<int>(std::min(per_block, groups - j0)));
    }
    return;
  }
  for (int64_t b = 0; b < groups; ++b) grids[b] = RoundGroupGrid(f, grids[b]);
}

uint8_t NearestCode(const GroupGrid& grid, int qmax, float w) {
  if (grid.scale == 0.0f || !std::isfinite(grid.scale)) return 0;
  // In f64 so that the code is the nearest for the grid as stored, not for an
  // f32-rounded quotient (w8's 127 + w/scale would lose 7 bits).
  const double x = (static_cast<double>(w) - grid.offset) / grid.scale;
  if (!(x > 0.0)) return 0;  // also NaN
  if (x >= qmax) return static_cast<uint8_t>(qmax);
  // x is positive: truncating x + 0.5 rounds half away from zero, without
  // the library call std::round costs on baseline x86 (the MSE search makes
  // 72 candidate passes over every weight).
  return static_cast<uint8_t>(static_cast<int>(x + 0.5));
}

double SquaredErrorOnGrid(const GroupGrid& grid, int qmax, const float* w, int64_t len) {
  double err = 0.0;
  for (int64_t i = 0; i < len; ++i) {
    const double d = static_cast<double>(w[i]) - GridValue(grid, NearestCode(grid, qmax, w[i]));
    err += d * d;
  }
  return err;
}

// Block layouts: see formats.h. Codes of a partial last block past k are 0.
void EncodeRow(const FormatInfo& f, const GroupGrid* grids, const uint8_t* codes, int64_t k,
               uint8_t* out) {
  const int bw = f.block_weights;
  switch (f.encoding) {
    case ScaleEncoding::kF16ScaleMin:
    case ScaleEncoding::kF16ScaleStretched:
    case ScaleEncoding::kF16ScaleTernary: {
      const bool has_min = f.encoding == ScaleEncoding::kF16ScaleMin;
      const int header = has_min ? 4 : 2;
      for (int64_t b = 0; b < NumGroups(f, k); ++b, out += f.block_bytes) {
        PutF16(out, grids[b].scale);
        if (has_min) PutF16(out + 2, grids[b].offset);
        const int valid = GroupLength(f, k, b);
        if (f.encoding == ScaleEncoding::kF16ScaleTernary) {
          PackTernary(codes + GroupBegin(f, b), valid, out + header);
        } else {
          PackPlanes(codes + GroupBegin(f, b), valid, bw, f.bits, out + header);
        }
      }
      return;
    }
    case ScaleEncoding::kDoubleQuantScaleMin: {
      const int64_t groups = NumGroups(f, k), per_block = bw / f.group_size;
      for (int64_t i0 = 0, j0 = 0; i0 < k; i0 += bw, j0 += per_block, out += f.block_bytes) {
        const int n = static_cast<int>(std::min(per_block, groups - j0));
        const DqFactors fac = FactorDqSuperBlock(grids + j0, n);
        std::memcpy(out, &fac.d, 2);
        std::memcpy(out + 2, &fac.m0, 2);
        std::memcpy(out + 4, &fac.dm, 2);
        std::memset(out + kDqHeaderBytes, 0, static_cast<size_t>(per_block));
        std::memcpy(out + kDqHeaderBytes, fac.sm, static_cast<size_t>(n));
        const int valid = static_cast<int>(std::min<int64_t>(bw, k - i0));
        PackPlanes(codes + i0, valid, bw, 2, out + kDqHeaderBytes + per_block);
      }
      return;
    }
    case ScaleEncoding::kF32ScalePerRow: {
      std::memcpy(out, &grids[0].scale, 4);
      for (int64_t i = 0; i < k; ++i) out[4 + i] = static_cast<uint8_t>(static_cast<int8_t>(codes[i] - 127));
      return;
    }
    case ScaleEncoding::kNone:
      return;
  }
}

void DecodeRow(const FormatInfo& f, const uint8_t* row, int64_t k, GroupGrid* grids,
               uint8_t* codes) {
  const int bw = f.block_weights;
  switch (f.encoding) {
    case ScaleEncoding::kF16ScaleMin:
    case ScaleEncoding::kF16ScaleStretched:
    case ScaleEncoding::kF16ScaleTernary: {
      const bool has_min = f.encoding == ScaleEncoding::kF16ScaleMin;
      const uint8_t* planes_at = row + (has_min ? 4 : 2);
      for (int64_t b = 0; b < NumGroups(f, k); ++b, row += f.block_bytes, planes_at += f.block_bytes) {
        const float scale = GetF16(row);
        const float offset = has_min ? GetF16(row + 2)
                             : f.encoding == ScaleEncoding::kF16ScaleStretched ? -1.5f * scale
                                                                              : -scale;
        grids[b] = {scale, offset};
        uint8_t* c = codes + GroupBegin(f, b);
        const int len = GroupLength(f, k, b);
        for (int i = 0; i < len; ++i) {
          c[i] = static_cast<uint8_t>(f.encoding == ScaleEncoding::kF16ScaleTernary
                                          ? TernaryCode(planes_at, i)
                                          : PlaneCode(planes_at, bw, f.bits, i));
        }
      }
      return;
    }
    case ScaleEncoding::kDoubleQuantScaleMin: {
      const int64_t groups = NumGroups(f, k), per_block = bw / f.group_size;
      for (int64_t i0 = 0, j0 = 0; i0 < k; i0 += bw, j0 += per_block, row += f.block_bytes) {
        for (int64_t j = j0; j < std::min(groups, j0 + per_block); ++j) {
          const DqGroup g = DqGroupAt(row, static_cast<int>(j - j0));
          grids[j] = {g.scale, g.offset};
        }
        const int valid = static_cast<int>(std::min<int64_t>(bw, k - i0));
        for (int i = 0; i < valid; ++i) {
          codes[i0 + i] = static_cast<uint8_t>(PlaneCode(row + kDqHeaderBytes + per_block, bw, 2, i));
        }
      }
      return;
    }
    case ScaleEncoding::kF32ScalePerRow: {
      float scale;
      std::memcpy(&scale, row, 4);
      grids[0] = {scale, -127.0f * scale};
      for (int64_t i = 0; i < k; ++i) codes[i] = static_cast<uint8_t>(static_cast<int8_t>(row[4 + i]) + 127);
      return;
    }
    case ScaleEncoding::kNone:
      return;
  }
}

}  // namespace bitlens::quant
