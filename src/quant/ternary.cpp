#include "quant/ternary.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "quant/quantize_layer.h"

namespace bitlens::quant {
namespace {

GridFamily ProbeGridFamily(const FormatInfo& f) {
  GridFamily fam;
  fam.qmax = QMax(f);
  if (!HasGrid(f)) return fam;
  const int64_t len = f.group_size > 0 ? f.group_size : 64;
  std::vector<float> w(static_cast<size_t>(len));
  for (int64_t i = 0; i < len; ++i) w[static_cast<size_t>(i)] = 1.0f + static_cast<float>(i) / len;
  std::vector<GroupGrid> g(static_cast<size_t>(NumGroups(f, len)));
  ChooseRowGrids(f, w.data(), len, RangeSearch::kMinMax, g.data());
  // A grid with a free offset puts it at the minimum (> 0); a symmetric grid
  // is centred on zero.
  if (g[0].offset < 0.0f && g[0].scale > 0.0f) fam.center = -g[0].offset / g[0].scale;
  return fam;
}

double GroupSquaredError(const GroupGrid& g, int qmax, const float* w, int64_t len) {
  double e = 0.0;
  for (int64_t i = 0; i < len; ++i) {
    const double d = double(w[i]) - GridValue(g, NearestCode(g, qmax, w[i]));
    e += d * d;
  }
  return e;
}

// Alternating minimisation of Σ (w − offset − scale·q)²: nearest codes for the
// grid, then the least-squares grid for the codes (Lloyd-style; each step
// lowers the error, so it stops when it does not).
GroupGrid RefineGroup(const GroupGrid& start, const GridFamily& fam, const float* w, int64_t len) {
  GroupGrid best = start;
  double best_e = GroupSquaredError(start, fam.qmax, w, len);
  if (fam.ternary()) {
    GroupGrid t;
    t.scale = OptimalTernaryScale(w, len);
    t.offset = -t.scale;
    const double e = GroupSquaredError(t, fam.qmax, w, len);
    if (e < best_e) best = t, best_e = e;
    return best;
  }
  GroupGrid cur = start;
  for (int it = 0; it < 16; ++it) {
    double s1 = 0, sq = 0, sqq = 0, sw = 0, swq = 0;  // sums over the group
    for (int64_t i = 0; i < len; ++i) {
      double q = NearestCode(cur, fam.qmax, w[i]);
      if (fam.symmetric()) q -= fam.center;
      s1 += 1; sq += q; sqq += q * q; sw += w[i]; swq += w[i] * q;
    }
    GroupGrid next;
    if (fam.symmetric()) {
      if (sqq <= 0) break;
      next.scale = static_cast<float>(swq / sqq);
      next.offset = -fam.center * next.scale;
    } else {
      const double det = s1 * sqq - sq * sq;
      if (det <= 0) break;  // all codes equal: the grid is already exact up to rounding
      next.scale = static_cast<float>((s1 * swq - sq * sw) / det);
      next.offset = static_cast<float>((sw - next.scale * sq) / s1);
    }
    if (!(next.scale > 0.0f) || !std::isfinite(next.offset)) break;
    const double e = GroupSquaredError(next, fam.qmax, w, len);
    if (!(e < best_e)) break;
    best = cur = next;
    best_e = e;
  }
  return best;
}

double WeightedGroupError(const GroupGrid& g, int qmax, const float* w, const float* d,
                          int64_t len) {
  double e = 0.0;
  for (int64_t i = 0; i < len; ++i) {
    const double r = double(w[i]) - GridValue(g, NearestCode(g, qmax, w[i]));
    e += d[i] * r * r;
  }
  return e;
}

// The same error for scoring many candidate grids: codes rounded in f32 with
// the 1.5·2^23 trick (ties to even, vectorizable without SSE4.1). It may pick
// a different code than NearestCode on exact ties only.
double WeightedGroupErrorFast(const GroupGrid& g, int qmax, const float* w, const float* d,
                              int64_t len) {
  const float inv = 1.0f / g.scale, top = static_cast<float>(qmax);
  constexpr float kMagic = 12582912.0f;  // 1.5 · 2^23
  float acc[8] = {};  // 8 independent partial sums so the loop vectorizes
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    for (int j = 0; j < 8; ++j) {
      float t = (w[i + j] - g.offset) * inv;
      t = std::min(std::max(t, 0.0f), top);
      t = (t + kMagic) - kMagic;
      const float r = w[i + j] - (g.offset + g.scale * t);
      acc[j] += d[i + j] * r * r;
    }
  }
  double e = 0.0;
  for (float a : acc) e += a;
  for (; i < len; ++i) {
    float t = (w[i] - g.offset) * inv;
    t = std::min(std::max(t, 0.0f), top);
    t = (t + kMagic) - kMagic;
    const float r = w[i] - (g.offset + g.scale * t);
    e += d[i] * r * r;
  }
  return e;
}

double WeightedSliceError(const FormatInfo& f, const float* w, const float* d, int64_t len,
                          const GroupGrid* grids) {
  const int qmax = QMax(f);
  const int64_t gs = f.group_size > 0 ? f.group_size : len;
  double e = 0.0;
  for (int64_t g = 0; g * gs < len; ++g) {
    e += WeightedGroupError(grids[g], qmax, w + g * gs, d + g * gs, std::min(gs, len - g * gs));
  }
  return e;
}

}  // namespace

GridFamily FormatGridFamily(const FormatInfo& f) {
  static const std::vector<GridFamily> table = [] {
    std::vector<GridFamily> t;
    for (const FormatInfo& x : AllFormats()) t.push_back(ProbeGridFamily(x));
    return t;
  }();
  const auto all = AllFormats();
  if (&f >= all.data() && &f < all.data() + all.size()) return table[static_cast<size_t>(&f - all.data())];
  return ProbeGridFamily(f);
}

float OptimalTernaryScale(const float* w, int64_t len) {
  std::vector<float> a(static_cast<size_t>(len));
  for (int64_t i = 0; i < len; ++i) a[static_cast<size_t>(i)] = std::fabs(w[i]);
  std::sort(a.begin(), a.end(), std::greater<float>());
  double sum = 0.0, best = 0.0;
  float scale = 0.0f;
  for (int64_t j = 1; j <= len; ++j) {
    sum += a[static_cast<size_t>(j - 1)];
    const double gain = sum * sum / static_cast<double>(j);  // error = Σw² − gain
    if (gain > best) best = gain, scale = static_cast<float>(sum / static_cast<double>(j));
  }
  return scale;
}

double SliceSquaredError(const FormatInfo& f, const float* w, int64_t len, const GroupGrid* grids) {
  const int qmax = QMax(f);
  const int64_t gs = f.group_size > 0 ? f.group_size : len;
  double e = 0.0;
  for (int64_t g = 0; g * gs < len; ++g) {
    e += GroupSquaredError(grids[g], qmax, w + g * gs, std::min(gs, len - g * gs));
  }
  return e;
}

void RefinedRowGrids(const FormatInfo& f, const float* w, int64_t len, GroupGrid* grids) {
  const GridFamily fam = FormatGridFamily(f);
  const int64_t groups = NumGroups(f, len);
  std::vector<GroupGrid> clip(static_cast<size_t>(groups));
  ChooseRowGrids(f, w, len, RangeSearch::kMseClip, clip.data());
  const int64_t gs = f.group_size > 0 ? f.group_size : len;
  for (int64_t g = 0; g < groups; ++g) {
    grids[g] = RefineGroup(clip[static_cast<size_t>(g)], fam, w + g * gs, std::min(gs, len - g * gs));
  }
  RoundRowGrids(f, len, grids);
  // Rounding (f16, double quantization) may undo the gain: keep the clipping
  // search's grids for any unit where it is still better.
  const int64_t unit = std::min(GridUnit(f, len), len);
  for (int64_t u0 = 0; u0 < len; u0 += unit) {
    const int64_t ul = std::min(unit, len - u0), g0 = u0 / gs;
    const int64_t ng = (ul + gs - 1) / gs;
    if (SliceSquaredError(f, w + u0, ul, &clip[static_cast<size_t>(g0)]) <
        SliceSquaredError(f, w + u0, ul, grids + g0)) {
      std::copy(clip.begin() + g0, clip.begin() + g0 + ng, grids + g0);
    }
  }
}

}  // namespace bitlens::quant

namespace bitlens::quant {

void DiagWeightedRowGrids(const FormatInfo& f, const float* w, const float* d, int64_t len,
                          const GroupGrid* base, GroupGrid* grids) {
  const GridFamily fam = FormatGridFamily(f);
  const int qmax = fam.qmax;
  const int64_t groups = NumGroups(f, len);
  const int64_t gs = f.group_size > 0 ? f.group_size : len;
  for (int64_t g = 0; g < groups; ++g) {
    const float* x = w + g * gs;
    const float* dx = d + g * gs;
    const int64_t n = std::min(gs, len - g * gs);
    const auto [lo_it, hi_it] = std::minmax_element(x, x + n);
    const float lo = *lo_it, hi = *hi_it;
    const float amax = std::max(std::fabs(lo), std::fabs(hi));
    const float mid = 0.5f * (lo + hi), half = 0.5f * (hi - lo);
    GroupGrid best = base[g];
    double best_e = best.scale > 0.0f ? WeightedGroupErrorFast(best, qmax, x, dx, n) : INFINITY;
    for (const float p : ClipShrinkGrid()) {
      GroupGrid c;
      if (fam.symmetric()) {
        c.scale = p * amax / (static_cast<float>(qmax) - fam.center);
        c.offset = -fam.center * c.scale;
      } else {
        c.scale = 2.0f * p * half / static_cast<float>(qmax);
        c.offset = mid - p * half;
      }
      if (!(c.scale > 0.0f)) continue;
      const double e = WeightedGroupErrorFast(c, qmax, x, dx, n);
      if (e < best_e) best_e = e, best = c;
    }
    grids[g] = best;
  }
  RoundRowGrids(f, len, grids);
  const int64_t unit = std::min(GridUnit(f, len), len);
  for (int64_t u0 = 0; u0 < len; u0 += unit) {
    const int64_t ul = std::min(unit, len - u0), g0 = u0 / gs;
    const int64_t ng = (ul + gs - 1) / gs;
    if (WeightedSliceError(f, w + u0, d + u0, ul, base + g0) <
        WeightedSliceError(f, w + u0, d + u0, ul, grids + g0)) {
      std::copy(base + g0, base + g0 + ng, grids + g0);
    }
  }
}

}  // namespace bitlens::quant
