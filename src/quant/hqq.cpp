#include "quant/hqq.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "quant/ternary.h"

namespace bitlens::quant {
namespace {

// One group: HQQ's proximal iterations from the starting grid. The
// error that decides early stopping is mean |w − ŵ| as in the paper's solver;
// the best grid seen is kept.
GroupGrid HqqGroup(const GroupGrid& start, const GridFamily& fam, const HqqOptions& o,
                   const float* w, int64_t len, float* we) {
  GroupGrid cur = start, best = start;
  double best_err = INFINITY;
  float beta = o.beta;
  for (int it = 0; it < o.iters; ++it) {
    double err = 0.0, num = 0.0, den = 0.0;
    for (int64_t i = 0; i < len; ++i) {
      const uint8_t q = NearestCode(cur, fam.qmax, w[i]);
      const float r = w[i] - GridValue(cur, q);
      err += std::fabs(r);
      we[i] = HqqShrink(r, beta, o.lp_norm);  // the sparse outlier part of the error
    }
    err /= static_cast<double>(len);
    if (err < best_err) {
      best_err = err;
      best = cur;
    } else {
      break;
    }
    // Closed-form grid update for fixed codes against the target w − we.
    GroupGrid next = cur;
    if (fam.symmetric()) {
      for (int64_t i = 0; i < len; ++i) {
        const double c = NearestCode(cur, fam.qmax, w[i]) - fam.center;
        num += (w[i] - we[i]) * c;
        den += c * c;
      }
      if (den <= 0.0) break;
      next.scale = static_cast<float>(num / den);
      next.offset = -fam.center * next.scale;
      if (!(next.scale > 0.0f)) break;
    } else {
      // zero update: offset = mean(w − we − scale·q)
      for (int64_t i = 0; i < len; ++i) {
        num += w[i] - we[i] - cur.scale * NearestCode(cur, fam.qmax, w[i]);
      }
      next.offset = static_cast<float>(num / static_cast<double>(len));
    }
    cur = next;
    beta *= o.kappa;
  }
  return best;
}

}  // namespace

float HqqShrink(float x, float beta, float lp_norm) {
  const float a = std::fabs(x);
  if (a == 0.0f) return 0.0f;
  const float t = a - std::pow(a, lp_norm - 1.0f) / beta;
  return t > 0.0f ? std::copysign(t, x) : 0.0f;
}

void HqqRowGrids(const FormatInfo& f, const HqqOptions& options, const float* w, int64_t len,
                 GroupGrid* grids) {
  const GridFamily fam = FormatGridFamily(f);
  const int64_t groups = NumGroups(f, len);
  ChooseRowGrids(f, w, len, options.start_from_clip ? RangeSearch::kMseClip : RangeSearch::kMinMax,
                 grids);
  const int64_t gs = f.group_size > 0 ? f.group_size : len;
  std::vector<float> we(static_cast<size_t>(std::min(gs, len)));
  for (int64_t g = 0; g < groups; ++g) {
    grids[g] = HqqGroup(grids[g], fam, options, w + g * gs, std::min(gs, len - g * gs), we.data());
  }
  RoundRowGrids(f, len, grids);
}

}  // namespace bitlens::quant
