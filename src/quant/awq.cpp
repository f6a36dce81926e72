#include "quant/awq.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "base/thread_pool.h"
#include "quant/grid.h"

namespace bitlens::quant {
namespace {

// s = mean|x|^α, floored (dead channels) and normalised by sqrt(max · min) so
// the scales straddle 1 (AWQ's auto_scale).
void ScalesForAlpha(const std::vector<double>& abs_mean, float alpha, std::vector<float>* s) {
  float lo = INFINITY, hi = 0.0f;
  for (size_t j = 0; j < abs_mean.size(); ++j) {
    const float v = std::max(1e-4f, static_cast<float>(std::pow(abs_mean[j], alpha)));
    (*s)[j] = v;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const float norm = std::sqrt(lo * hi);
  for (float& v : *s) v /= norm;
}

}  // namespace

void ScaleInputChannels(float* w, int64_t n, int64_t k, const float* s) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < k; ++j) w[r * k + j] *= s[j];
}

LayerStats ScaledStats(const LayerStats& stats, const float* s) {
  LayerStats out = stats;
  const int64_t k = stats.k;
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = i; j < k; ++j) out.xtx[i * k + j] = stats.xtx[i * k + j] / (s[i] * s[j]);
    out.abs_sum[i] = stats.abs_sum[i] / s[i];
    out.abs_max[i] = stats.abs_max[i] / s[i];
  }
  return out;
}

Status AwqSearchScales(const FormatInfo& f, std::span<const AwqWeight> weights, int64_t k,
                       const LayerStats& stats, const AwqOptions& options, AwqResult* result) {
  if (weights.empty()) return InvalidArgument("AWQ: no weight matrices given");
  if (!HasGrid(f)) return InvalidArgument(std::string("AWQ: ") + f.name + " has no grids");
  if (stats.k != k) {
    return InvalidArgument("AWQ: calibration statistics have k=" + std::to_string(stats.k) +
                           " but the weights have k=" + std::to_string(k));
  }
  if (stats.rows_seen <= 0) return InvalidArgument("AWQ: the calibration statistics hold no rows");
  BL_TRY(CheckRowLength(f, k).WithContext(std::string("AWQ ") + f.name));
  int64_t total = 0;
  for (const AwqWeight& m : weights) {
    if (m.w == nullptr || m.n <= 0) return InvalidArgument("AWQ: empty weight matrix in the list");
    total += m.n;
  }
  // Sampled rows: the same fraction of every matrix, evenly spaced.
  const int64_t want = options.sample_rows <= 0 ? total : std::min(total, options.sample_rows);
  std::vector<const float*> rows;
  for (const AwqWeight& m : weights) {
    const int64_t take = std::max<int64_t>(1, (m.n * want + total - 1) / total);
    for (int64_t i = 0; i < std::min(take, m.n); ++i) rows.push_back(m.w + (i * m.n / take) * k);
  }
  const int64_t nr = static_cast<int64_t>(rows.size());
  const int points = std::max(1, options.grid_points);
  const std::vector<double> abs_mean = stats.AbsMean();
  const int qmax = QMax(f);
  const int64_t groups = NumGroups(f, k);
  const int64_t gs = f.group_size > 0 ? f.group_size : k;

  std::vector<float> s(static_cast<size_t>(k)), d(static_cast<size_t>(nr * k)), t(d.size());
  *result = AwqResult{};
  result->error_by_alpha.assign(static_cast<size_t>(points), 0.0);
  double best = INFINITY;
  for (int p = 0; p < points; ++p) {
    const float alpha = static_cast<float>(p) / static_cast<float>(points);
    ScalesForAlpha(abs_mean, alpha, &s);
    // D = W − Q(W·diag(s))·diag(1/s) on the sampled rows.
    ParallelFor(static_cast<size_t>(nr), 4, [&](size_t r0, size_t r1, size_t) {
      std::vector<float> ws(static_cast<size_t>(k));
      std::vector<GroupGrid> grids(static_cast<size_t>(groups));
      for (size_t r = r0; r < r1; ++r) {
        const float* w = rows[r];
        for (int64_t j = 0; j < k; ++j) ws[j] = w[j] * s[j];
        ChooseGrids(f, options.grid, options.hqq, ws.data(), k, grids.data());
        float* dr = d.data() + r * k;
        for (int64_t j = 0; j < k; ++j) {
          const GroupGrid& g = grids[j / gs];
          dr[j] = w[j] - GridValue(g, NearestCode(g, qmax, ws[j])) / s[j];
        }
      }
    });
    cblas_ssymm(CblasRowMajor, CblasRight, CblasUpper, static_cast<int>(nr), static_cast<int>(k),
                1.0f, stats.xtx.data(), static_cast<int>(k), d.data(), static_cast<int>(k), 0.0f,
                t.data(), static_cast<int>(k));
    double err = 0.0;
    for (size_t i = 0; i < d.size(); ++i) err += double(d[i]) * t[i];
    result->error_by_alpha[static_cast<size_t>(p)] = err;
    if (p == 0) result->error_plain = err;
    if (err < best) {
      best = err;
      result->alpha = alpha;
      result->scales = s;
    }
  }
  result->error_scaled = best;
  return Status::Ok();
}

}  // namespace bitlens::quant
