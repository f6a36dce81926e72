#include "quant/layer_stats.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <string>

namespace bitlens::quant {

LayerStats::LayerStats(int64_t k_in)
    : k(k_in),
      xtx(static_cast<size_t>(k_in * k_in), 0.0f),
      abs_sum(static_cast<size_t>(k_in), 0.0),
      abs_max(static_cast<size_t>(k_in), 0.0f) {}

Status LayerStats::Accumulate(const float* x, int64_t m) {
  if (k <= 0 || xtx.size() != static_cast<size_t>(k * k)) {
    return InvalidArgument("LayerStats: not initialised (construct with LayerStats(k))");
  }
  if (m < 0) return InvalidArgument("LayerStats: negative row count " + std::to_string(m));
  if (m == 0) return Status::Ok();
  for (int64_t t = 0; t < m; ++t) {
    const float* row = x + t * k;
    for (int64_t j = 0; j < k; ++j) {
      if (!std::isfinite(row[j])) {
        return InvalidArgument("LayerStats: activation row " + std::to_string(t) + " channel " +
                               std::to_string(j) + " is not finite");
      }
    }
  }
  for (int64_t t = 0; t < m; ++t) {
    const float* row = x + t * k;
    for (int64_t j = 0; j < k; ++j) {
      const float a = std::fabs(row[j]);
      abs_sum[static_cast<size_t>(j)] += a;
      abs_max[static_cast<size_t>(j)] = std::max(abs_max[static_cast<size_t>(j)], a);
    }
  }
  // C[k,k] += xᵀ x with x [m, k] row-major: upper triangle of row-major C.
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(k), static_cast<int>(m), 1.0f,
              x, static_cast<int>(k), 1.0f, xtx.data(), static_cast<int>(k));
  rows_seen += m;
  return Status::Ok();
}

Status LayerStats::Merge(const LayerStats& other) {
  if (other.k != k) {
    return InvalidArgument("LayerStats: cannot merge k=" + std::to_string(other.k) +
                           " into k=" + std::to_string(k));
  }
  for (size_t i = 0; i < xtx.size(); ++i) xtx[i] += other.xtx[i];
  for (size_t j = 0; j < abs_sum.size(); ++j) {
    abs_sum[j] += other.abs_sum[j];
    abs_max[j] = std::max(abs_max[j], other.abs_max[j]);
  }
  rows_seen += other.rows_seen;
  return Status::Ok();
}

void LayerStats::Symmetrize() {
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < i; ++j) xtx[static_cast<size_t>(i * k + j)] = xtx[static_cast<size_t>(j * k + i)];
  }
}

std::vector<double> LayerStats::AbsMean() const {
  std::vector<double> mean(static_cast<size_t>(k), 0.0);
  if (rows_seen == 0) return mean;
  for (size_t j = 0; j < mean.size(); ++j) mean[j] = abs_sum[j] / static_cast<double>(rows_seen);
  return mean;
}

size_t LayerStats::MemoryBytes() const {
  return xtx.size() * sizeof(float) + abs_sum.size() * sizeof(double) + abs_max.size() * sizeof(float);
}

}  // namespace bitlens::quant
