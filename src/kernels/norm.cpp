// kernels/norm: RmsNorm, LayerNorm and Softmax over rows, vectorized with
// Highway runtime dispatch. Sums accumulate in f32 lanes, then one lane sum,
// then the scalar tail, in a fixed order (deterministic).
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/norm.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "base/thread_pool.h"
#include "kernels/ops.h"

HWY_BEFORE_NAMESPACE();
namespace bitlens::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// x, y [rows, dim], weight [dim]
void RmsNormRows(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t dim_vec = dim - dim % lanes;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    VF acc = hn::Zero(df);
    for (int64_t i = 0; i < dim_vec; i += lanes) {
      const VF v = hn::LoadU(df, xr + i);
      acc = hn::MulAdd(v, v, acc);
    }
    float sum_sq = hn::GetLane(hn::SumOfLanes(df, acc));
    for (int64_t i = dim_vec; i < dim; ++i) sum_sq += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(sum_sq / static_cast<float>(dim) + eps);
    const VF vinv = hn::Set(df, inv);
    for (int64_t i = 0; i < dim_vec; i += lanes) {
      hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(df, xr + i), vinv), hn::LoadU(df, weight + i)), df, yr + i);
    }
    for (int64_t i = dim_vec; i < dim; ++i) yr[i] = xr[i] * inv * weight[i];
  }
}

// x, y [rows, dim], weight, bias [dim] (bias may be null); two passes (mean,
// then the variance of x - mean) to avoid the cancellation of E[x^2] - E[x]^2.
void LayerNormRows(const float* x, const float* weight, const float* bias, int64_t rows, int64_t dim, float eps,
                   float* y) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t dim_vec = dim - dim % lanes;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    VF acc = hn::Zero(df);
    for (int64_t i = 0; i < dim_vec; i += lanes) acc = hn::Add(acc, hn::LoadU(df, xr + i));
    float sum = hn::GetLane(hn::SumOfLanes(df, acc));
    for (int64_t i = dim_vec; i < dim; ++i) sum += xr[i];
    const float mean = sum / static_cast<float>(dim);
    const VF vmean = hn::Set(df, mean);
    acc = hn::Zero(df);
    for (int64_t i = 0; i < dim_vec; i += lanes) {
      const VF d = hn::Sub(hn::LoadU(df, xr + i), vmean);
      acc = hn::MulAdd(d, d, acc);
    }
    float sum_sq = hn::GetLane(hn::SumOfLanes(df, acc));
    for (int64_t i = dim_vec; i < dim; ++i) sum_sq += (xr[i] - mean) * (xr[i] - mean);
    const float inv = 1.0f / std::sqrt(sum_sq / static_cast<float>(dim) + eps);
    const VF vinv = hn::Set(df, inv);
    for (int64_t i = 0; i < dim_vec; i += lanes) {
      const VF norm = hn::Mul(hn::Sub(hn::LoadU(df, xr + i), vmean), vinv);
      const VF b = bias ? hn::LoadU(df, bias + i) : hn::Zero(df);
      hn::StoreU(hn::MulAdd(norm, hn::LoadU(df, weight + i), b), df, yr + i);
    }
    for (int64_t i = dim_vec; i < dim; ++i) yr[i] = (xr[i] - mean) * inv * weight[i] + (bias ? bias[i] : 0.0f);
  }
}

// x [rows, n], in place: exp(x - max) / sum. The ragged tail goes through the
// same vector exp via a padded stack buffer, so every element sees one exp.
void SoftmaxRows(float* x, int64_t rows, int64_t n) {
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t n_vec = n - n % lanes;
  HWY_ALIGN float tail[HWY_MAX_BYTES / sizeof(float)];
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * n;
    float max = -INFINITY;
    if (n_vec > 0) {
      VF vmax = hn::LoadU(df, xr);
      for (int64_t i = lanes; i < n_vec; i += lanes) vmax = hn::Max(vmax, hn::LoadU(df, xr + i));
      max = hn::GetLane(hn::MaxOfLanes(df, vmax));
    }
    for (int64_t i = n_vec; i < n; ++i) max = xr[i] > max ? xr[i] : max;
    const VF vmax = hn::Set(df, max);
    VF acc = hn::Zero(df);
    for (int64_t i = 0; i < n_vec; i += lanes) {
      const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, xr + i), vmax));
      acc = hn::Add(acc, e);
      hn::StoreU(e, df, xr + i);
    }
    float sum = hn::GetLane(hn::SumOfLanes(df, acc));
    const int64_t rest = n - n_vec;
    if (rest > 0) {
      for (int64_t i = 0; i < lanes; ++i) tail[i] = i < rest ? xr[n_vec + i] : max;
      hn::Store(hn::Exp(df, hn::Sub(hn::Load(df, tail), vmax)), df, tail);
      for (int64_t i = 0; i < rest; ++i) {
        xr[n_vec + i] = tail[i];
        sum += tail[i];
      }
    }
    const float inv = 1.0f / sum;
    const VF vinv = hn::Set(df, inv);
    for (int64_t i = 0; i < n_vec; i += lanes) hn::StoreU(hn::Mul(hn::LoadU(df, xr + i), vinv), df, xr + i);
    for (int64_t i = n_vec; i < n; ++i) xr[i] *= inv;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bitlens::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitlens::kernels {

HWY_EXPORT(RmsNormRows);
HWY_EXPORT(LayerNormRows);
HWY_EXPORT(SoftmaxRows);

namespace {

// Rows are independent, so any split gives the same results. Calls smaller
// than kSerialBelow elements (decode) stay on the calling thread.
template <class F>
void SplitRows(int64_t rows, int64_t dim, const F& fn) {
  constexpr int64_t kSerialBelow = 32768, kGrainElements = 8192;
  if (rows < 2 || rows * dim < kSerialBelow) return fn(0, rows);
  const size_t grain = static_cast<size_t>(std::max<int64_t>(1, kGrainElements / std::max<int64_t>(dim, 1)));
  auto part = [&](size_t begin, size_t end, size_t /*worker*/) {
    fn(static_cast<int64_t>(begin), static_cast<int64_t>(end));
  };
  ParallelFor(static_cast<size_t>(rows), grain, part);
}

}  // namespace

void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y) {
  SplitRows(rows, dim, [&](int64_t r0, int64_t r1) {
    HWY_DYNAMIC_DISPATCH(RmsNormRows)(x + r0 * dim, weight, r1 - r0, dim, eps, y + r0 * dim);
  });
}

void LayerNorm(const float* x, const float* weight, const float* bias, int64_t rows, int64_t dim, float eps,
               float* y) {
  SplitRows(rows, dim, [&](int64_t r0, int64_t r1) {
    HWY_DYNAMIC_DISPATCH(LayerNormRows)(x + r0 * dim, weight, bias, r1 - r0, dim, eps, y + r0 * dim);
  });
}

void Softmax(float* x, int64_t rows, int64_t n) {
  SplitRows(rows, n, [&](int64_t r0, int64_t r1) { HWY_DYNAMIC_DISPATCH(SoftmaxRows)(x + r0 * n, r1 - r0, n); });
}

}  // namespace bitlens::kernels
#endif  // HWY_ONCE
