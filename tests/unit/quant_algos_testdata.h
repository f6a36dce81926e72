// Seeded synthetic weights and calibration activations for the quantization
// algorithm tests: correlated inputs x = z·A plus a few outlier channels, the
// structure that makes GPTQ and AWQ matter on real LLM layers.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "quant/formats.h"
#include "quant/layer_stats.h"

namespace bitlens::quant::testdata {

// x [m, k] = z [m, k] · A [k, k], z ~ N(0, 1), A = 0.5·I + N(0, 1/k) (a random
// mixing), then `outliers` channels (every k/outliers-th) scaled by `outlier_gain`.
inline std::vector<float> CorrelatedActivations(int64_t m, int64_t k, int outliers,
                                                float outlier_gain, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(k * k));
  const float sd = 1.0f / std::sqrt(static_cast<float>(k));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) a[i * k + j] = sd * nd(rng) + (i == j ? 0.5f : 0.0f);
  std::vector<float> z(static_cast<size_t>(k)), x(static_cast<size_t>(m * k), 0.0f);
  for (int64_t t = 0; t < m; ++t) {
    for (float& v : z) v = nd(rng);
    float* row = x.data() + t * k;
    for (int64_t i = 0; i < k; ++i) {
      const float zi = z[i];
      const float* ai = a.data() + i * k;
      for (int64_t j = 0; j < k; ++j) row[j] += zi * ai[j];
    }
    for (int o = 0; o < outliers; ++o) row[(o * k) / outliers + 1] *= outlier_gain;
  }
  return x;
}

// Cheaper for large k: x = z [m, rank] · B [rank, k] + 0.3·noise, outliers as above.
inline std::vector<float> LowRankActivations(int64_t m, int64_t k, int64_t rank, int outliers,
                                             float outlier_gain, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> b(static_cast<size_t>(rank * k)), z(static_cast<size_t>(rank));
  for (float& v : b) v = nd(rng) / std::sqrt(static_cast<float>(rank));
  std::vector<float> x(static_cast<size_t>(m * k));
  for (int64_t t = 0; t < m; ++t) {
    float* row = x.data() + t * k;
    for (int64_t j = 0; j < k; ++j) row[j] = 0.3f * nd(rng);
    for (float& v : z) v = nd(rng);
    for (int64_t r = 0; r < rank; ++r)
      for (int64_t j = 0; j < k; ++j) row[j] += z[r] * b[r * k + j];
    for (int o = 0; o < outliers; ++o) row[(o * k) / outliers + 1] *= outlier_gain;
  }
  return x;
}

inline std::vector<float> NormalWeights(int64_t count, float sd, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> w(static_cast<size_t>(count));
  for (float& v : w) v = d(rng);
  return w;
}

inline LayerStats StatsOf(const std::vector<float>& x, int64_t k) {
  LayerStats s(k);
  const Status st = s.Accumulate(x.data(), static_cast<int64_t>(x.size()) / k);
  (void)st;
  return s;
}

// ‖(W − Ŵ) X‖² / ‖W X‖² straight from the activations, in double.
inline double BruteForceOutputError(const std::vector<float>& w, const std::vector<float>& w_hat,
                                    const std::vector<float>& x, int64_t n, int64_t k) {
  const int64_t m = static_cast<int64_t>(x.size()) / k;
  double num = 0.0, den = 0.0;
  for (int64_t t = 0; t < m; ++t) {
    for (int64_t r = 0; r < n; ++r) {
      double y = 0.0, dy = 0.0;
      for (int64_t j = 0; j < k; ++j) {
        y += double(w[r * k + j]) * x[t * k + j];
        dy += (double(w[r * k + j]) - w_hat[r * k + j]) * x[t * k + j];
      }
      num += dy * dy;
      den += y * y;
    }
  }
  return num / den;
}

}  // namespace bitlens::quant::testdata
