// quant/grid_dq: double quantization of a super-block's group grids. Group
// scales are d·sc and group mins m0 + dm·mc with 4-bit codes sc, mc and f16
// d, m0, dm (the mins get their own offset m0, so groups of either sign are
// stored as finely as their spread allows; k-quants' d_min·code can only
// reach mins on one side of zero).
#include "quant/grid_dq.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/f16.h"
#include "quant/block_codes.h"

namespace bitlens::quant {
namespace {

constexpr int kCodeMax = 15;  // 4-bit scale and min codes

// Neighbouring f16 values, for rounding a factor up or down instead of to nearest.
uint16_t F16Up(uint16_t h) {
  if (h == 0x8000u) return 0x0001u;
  return (h & 0x8000u) ? h - 1 : h + 1;
}
uint16_t F16Down(uint16_t h) {
  if ((h & 0x7fffu) == 0) return 0x8001u;
  return (h & 0x8000u) ? h + 1 : h - 1;
}
uint16_t F16AtLeast(float x) {
  uint16_t h = F32ToF16(x);
  if (F16ToF32(h) < x) h = F16Up(h);
  return h;
}
uint16_t F16AtMost(float x) {
  uint16_t h = F32ToF16(x);
  if (F16ToF32(h) > x) h = F16Down(h);
  return h;
}

struct Codes {
  uint16_t d = 0, m0 = 0, dm = 0;
  uint8_t sc[8] = {}, mc[8] = {};
};

void ToGrids(const Codes& c, int n, GroupGrid* grids) {
  uint8_t block[kDqHeaderBytes + 8];
  std::memcpy(block, &c.d, 2);
  std::memcpy(block + 2, &c.m0, 2);
  std::memcpy(block + 4, &c.dm, 2);
  for (int j = 0; j < n; ++j) {
    block[kDqHeaderBytes + j] = static_cast<uint8_t>(c.sc[j] | (c.mc[j] << 4));
    const DqGroup g = DqGroupAt(block, j);
    grids[j] = {g.scale, g.offset};
  }
}

int ArgMax(const float* v, int n) { return static_cast<int>(std::max_element(v, v + n) - v); }
int ArgMin(const float* v, int n) { return static_cast<int>(std::min_element(v, v + n) - v); }

// Nearest storable codes for proposals. The largest scale gets code 15 and
// the smallest and largest mins codes 0 and 15, which keeps the result
// canonical: FactorDqSuperBlock reads the factors back from the grids alone.
Codes RoundNearest(const float* scale, const float* offset, int n) {
  Codes c;
  const int js = ArgMax(scale, n), jlo = ArgMin(offset, n), jhi = ArgMax(offset, n);
  c.d = F32ToF16(scale[js] / kCodeMax);
  const float d = F16ToF32(c.d);
  for (int j = 0; j < n; ++j) {
    if (!(d > 0.0f)) break;
    // A positive scale keeps at least code 1: a step of d never loses to a
    // group collapsed onto its min.
    const float q = std::clamp(std::round(scale[j] / d), scale[j] > 0.0f ? 1.0f : 0.0f, 15.0f);
    c.sc[j] = static_cast<uint8_t>(j == js ? kCodeMax : q);
  }
  c.m0 = F32ToF16(offset[jlo]);
  const float m0 = F16ToF32(c.m0);
  c.dm = F32ToF16(std::max(0.0f, (offset[jhi] - m0) / kCodeMax));
  const float dm = F16ToF32(c.dm);
  for (int j = 0; j < n && dm > 0.0f; ++j) {
    const float q = std::clamp(std::round((offset[j] - m0) / dm), 0.0f, 15.0f);
    c.mc[j] = static_cast<uint8_t>(j == jlo ? 0 : j == jhi ? kCodeMax : q);
  }
  return c;
}

// Min-max that stays min-max after double quantization: every group's grid
// covers its [lo, hi] (min rounded down, scale rounded up), so each weight is
// within half of its group's stored step.
Codes RoundCovering(const float* lo, const float* hi, int n, int qmax) {
  Codes c;
  const int jlo = ArgMin(lo, n), jhi = ArgMax(lo, n);
  c.m0 = F16AtMost(lo[jlo]);
  const float m0 = F16ToF32(c.m0);
  c.dm = F16AtMost(std::max(0.0f, (lo[jhi] - m0) / kCodeMax));
  while (F16ToF32(c.dm) > 0.0f && m0 + F16ToF32(c.dm) * kCodeMax > lo[jhi]) c.dm = F16Down(c.dm);
  if (!(F16ToF32(c.dm) > 0.0f)) c.dm = 0;
  const float dm = F16ToF32(c.dm);
  std::vector<float> offset(n, m0), target(n);
  for (int j = 0; j < n; ++j) {
    if (dm > 0.0f) {
      int q = j == jhi ? kCodeMax : std::clamp(static_cast<int>(std::floor((lo[j] - m0) / dm)), 0, kCodeMax);
      while (q > 0 && m0 + dm * static_cast<float>(q) > lo[j]) --q;
      if (j == jlo) q = 0;
      c.mc[j] = static_cast<uint8_t>(q);
      offset[j] = m0 + dm * static_cast<float>(q);
    }
    target[j] = std::max(0.0f, (hi[j] - offset[j]) / static_cast<float>(qmax));
  }
  const int js = ArgMax(target.data(), n);
  c.d = F16AtLeast(target[js] / kCodeMax);
  while (F16ToF32(c.d) * kCodeMax < target[js]) c.d = F16Up(c.d);
  const float d = F16ToF32(c.d);
  for (int j = 0; j < n && d > 0.0f; ++j) {
    int q = j == js ? kCodeMax : std::clamp(static_cast<int>(std::ceil(target[j] / d)), 0, kCodeMax);
    while (q < kCodeMax && offset[j] + (d * static_cast<float>(q)) * static_cast<float>(qmax) < hi[j]) ++q;
    c.sc[j] = static_cast<uint8_t>(q);
  }
  return c;
}

GroupGrid NoRounding(GroupGrid g) { return g; }

// Σ of squared errors over the super-block's weights under grids.
double SuperBlockError(const float* w, int len, int g, int qmax, const GroupGrid* grids) {
  double err = 0.0;
  for (int i0 = 0, j = 0; i0 < len; i0 += g, ++j) {
    err += SquaredErrorOnGrid(grids[j], qmax, w + i0, std::min(g, len - i0));
  }
  return err;
}

}  // namespace

void ChooseDqSuperBlock(const FormatInfo& f, const float* w, int len, RangeSearch search,
                        GroupGrid* grids) {
  const int g = f.group_size, qmax = QMax(f), n = (len + g - 1) / g;
  std::vector<float> lo(n), hi(n);
  for (int j = 0; j < n; ++j) {
    const auto [a, b] = std::minmax_element(w + j * g, w + std::min(len, (j + 1) * g));
    lo[j] = *a, hi[j] = *b;
  }
  ToGrids(RoundCovering(lo.data(), hi.data(), n, qmax), n, grids);
  if (search != RangeSearch::kMseClip) return;
  // Each group's clipped range in float, then stored two ways (nearest, and
  // covering the clipped range); the super-block keeps whichever of those and
  // plain min-max has the lowest error, so the search is never worse.
  std::vector<float> scale(n), offset(n), clip_hi(n);
  for (int j = 0; j < n; ++j) {
    const GroupGrid p =
        SearchAsymGrid(w + j * g, std::min(g, len - j * g), qmax, RangeSearch::kMseClip, NoRounding);
    scale[j] = p.scale, offset[j] = p.offset;
    clip_hi[j] = p.offset + p.scale * static_cast<float>(qmax);
  }
  double best = SuperBlockError(w, len, g, qmax, grids);
  std::vector<GroupGrid> cand(n);
  for (const Codes& c : {RoundNearest(scale.data(), offset.data(), n),
                         RoundCovering(offset.data(), clip_hi.data(), n, qmax)}) {
    ToGrids(c, n, cand.data());
    const double err = SuperBlockError(w, len, g, qmax, cand.data());
    if (err < best) best = err, std::copy(cand.begin(), cand.end(), grids);
  }
}

void RoundDqSuperBlock(int qmax, GroupGrid* grids, int n) {
  std::vector<float> scale(n), offset(n);
  for (int j = 0; j < n; ++j) {
    // A negative scale is the same grid walked backwards.
    GroupGrid g = grids[j];
    if (g.scale < 0.0f) g = {-g.scale, g.offset + g.scale * static_cast<float>(qmax)};
    scale[j] = g.scale, offset[j] = g.offset;
  }
  ToGrids(RoundNearest(scale.data(), offset.data(), n), n, grids);
}

DqFactors FactorDqSuperBlock(const GroupGrid* grids, int n) {
  float smax = 0.0f, omin = grids[0].offset, omax = grids[0].offset;
  for (int j = 0; j < n; ++j) {
    smax = std::max(smax, grids[j].scale);
    omin = std::min(omin, grids[j].offset), omax = std::max(omax, grids[j].offset);
  }
  DqFactors out;
  out.d = F32ToF16(smax / kCodeMax);
  out.m0 = F32ToF16(omin);
  out.dm = F32ToF16((omax - omin) / kCodeMax);
  const float d = F16ToF32(out.d), m0 = F16ToF32(out.m0), dm = F16ToF32(out.dm);
  for (int j = 0; j < n; ++j) {
    const int sc = d > 0.0f ? static_cast<int>(std::clamp(std::round(grids[j].scale / d), 0.0f, 15.0f)) : 0;
    const int mc =
        dm > 0.0f ? static_cast<int>(std::clamp(std::round((grids[j].offset - m0) / dm), 0.0f, 15.0f)) : 0;
    out.sm[j] = static_cast<uint8_t>(sc | (mc << 4));
  }
  return out;
}

}  // namespace bitlens::quant
