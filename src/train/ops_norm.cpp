// train/ops_norm: LayerNorm (torch, biased variance) and RMSNorm (Llama) with
// their backward passes. Row statistics are summed in double, like
// kernels::LayerNormRef / RmsNormRef, so the forward matches them to rounding.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base/thread_pool.h"
#include "train/ops.h"

namespace bitlens::train {
namespace {

// The weight/bias gradients sum over all rows. They are computed per block of
// kColBlock columns (bounds fixed by dim, not by the thread count), each column
// summed over rows in order into a stack accumulator: identical results for any
// thread count and no scratch memory.
constexpr int64_t kColBlock = 64;

template <typename F>
void ForEachColumnBlock(int64_t dim, F&& fn) {
  const size_t blocks = static_cast<size_t>((dim + kColBlock - 1) / kColBlock);
  ParallelFor(blocks, 1, [&](size_t b0, size_t b1, size_t) {
    for (size_t b = b0; b < b1; ++b) {
      const int64_t begin = static_cast<int64_t>(b) * kColBlock;
      fn(begin, std::min(dim, begin + kColBlock));
    }
  });
}

}  // namespace

// x, y [rows, dim]; w [dim]; b [dim] or null; mean, rstd [rows] saved.
void LayerNormForward(const float* x, const float* w, const float* b, int64_t rows, int64_t dim, float eps, float* y,
                      float* mean, float* rstd) {
  if (rows <= 0 || dim <= 0) return;
  ParallelFor(static_cast<size_t>(rows), 4, [&](size_t r0, size_t r1, size_t) {
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + r * dim;
      double mu = 0.0;
      for (int64_t i = 0; i < dim; ++i) mu += xr[i];
      mu /= static_cast<double>(dim);
      double var = 0.0;  // two passes: no cancellation when |mean| >> std
      for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mu) * (xr[i] - mu);
      var /= static_cast<double>(dim);
      const double inv = 1.0 / std::sqrt(var + eps);
      float* yr = y + r * dim;
      for (int64_t i = 0; i < dim; ++i) {
        yr[i] = static_cast<float>((xr[i] - mu) * inv * w[i] + (b != nullptr ? b[i] : 0.0f));
      }
      mean[r] = static_cast<float>(mu);
      rstd[r] = static_cast<float>(inv);
    }
  });
}

// With x̂ = (x − mean)·rstd and g = dy·w (per row):
//   dx += rstd · (g − mean(g) − x̂ · mean(g·x̂));   dw += Σ_rows dy·x̂;   db += Σ_rows dy
void LayerNormBackward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                       int64_t rows, int64_t dim, float* dx, float* dw, float* db) {
  if (rows <= 0 || dim <= 0) return;
  if (dx != nullptr) {
    ParallelFor(static_cast<size_t>(rows), 4, [&](size_t r0, size_t r1, size_t) {
      for (size_t r = r0; r < r1; ++r) {
        const float* xr = x + r * dim;
        const float* dyr = dy + r * dim;
        const double mu = mean[r], inv = rstd[r];
        double sum_g = 0.0, sum_gx = 0.0;
        for (int64_t i = 0; i < dim; ++i) {
          const double g = static_cast<double>(dyr[i]) * w[i];
          sum_g += g;
          sum_gx += g * (xr[i] - mu) * inv;
        }
        const double mean_g = sum_g / static_cast<double>(dim), mean_gx = sum_gx / static_cast<double>(dim);
        float* dxr = dx + r * dim;
        for (int64_t i = 0; i < dim; ++i) {
          const double g = static_cast<double>(dyr[i]) * w[i];
          const double xhat = (xr[i] - mu) * inv;
          dxr[i] = static_cast<float>(dxr[i] + inv * (g - mean_g - xhat * mean_gx));
        }
      }
    });
  }
  if (dw == nullptr && db == nullptr) return;
  ForEachColumnBlock(dim, [&](int64_t c0, int64_t c1) {
    double sum_w[kColBlock] = {}, sum_b[kColBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * dim;
      const float* dyr = dy + r * dim;
      const double mu = mean[r], inv = rstd[r];
      for (int64_t i = c0; i < c1; ++i) {
        sum_w[i - c0] += dyr[i] * (xr[i] - mu) * inv;
        sum_b[i - c0] += dyr[i];
      }
    }
    for (int64_t i = c0; i < c1; ++i) {
      if (dw != nullptr) dw[i] = static_cast<float>(dw[i] + sum_w[i - c0]);
      if (db != nullptr) db[i] = static_cast<float>(db[i] + sum_b[i - c0]);
    }
  });
}

// x, y [rows, dim]; w [dim]; rstd [rows] saved.
void RmsNormForward(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y, float* rstd) {
  if (rows <= 0 || dim <= 0) return;
  ParallelFor(static_cast<size_t>(rows), 4, [&](size_t r0, size_t r1, size_t) {
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + r * dim;
      double sum_sq = 0.0;
      for (int64_t i = 0; i < dim; ++i) sum_sq += static_cast<double>(xr[i]) * xr[i];
      const double inv = 1.0 / std::sqrt(sum_sq / static_cast<double>(dim) + eps);
      float* yr = y + r * dim;
      for (int64_t i = 0; i < dim; ++i) yr[i] = static_cast<float>(xr[i] * inv * w[i]);
      rstd[r] = static_cast<float>(inv);
    }
  });
}

// With g = dy·w (per row), since d rstd / dx_i = −rstd³ · x_i / dim:
//   dx += rstd · g − x · rstd³ · mean(g·x);   dw += Σ_rows dy·x·rstd
void RmsNormBackward(const float* dy, const float* x, const float* w, const float* rstd, int64_t rows, int64_t dim,
                     float* dx, float* dw) {
  if (rows <= 0 || dim <= 0) return;
  if (dx != nullptr) {
    ParallelFor(static_cast<size_t>(rows), 4, [&](size_t r0, size_t r1, size_t) {
      for (size_t r = r0; r < r1; ++r) {
        const float* xr = x + r * dim;
        const float* dyr = dy + r * dim;
        const double inv = rstd[r];
        double sum_gx = 0.0;
        for (int64_t i = 0; i < dim; ++i) sum_gx += static_cast<double>(dyr[i]) * w[i] * xr[i];
        const double coef = inv * inv * inv * sum_gx / static_cast<double>(dim);
        float* dxr = dx + r * dim;
        for (int64_t i = 0; i < dim; ++i) {
          dxr[i] = static_cast<float>(dxr[i] + inv * dyr[i] * w[i] - xr[i] * coef);
        }
      }
    });
  }
  if (dw == nullptr) return;
  ForEachColumnBlock(dim, [&](int64_t c0, int64_t c1) {
    double sum_w[kColBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * dim;
      const float* dyr = dy + r * dim;
      const double inv = rstd[r];
      for (int64_t i = c0; i < c1; ++i) sum_w[i - c0] += static_cast<double>(dyr[i]) * xr[i] * inv;
    }
    for (int64_t i = c0; i < c1; ++i) dw[i] = static_cast<float>(dw[i] + sum_w[i - c0]);
  });
}

}  // namespace bitlens::train
