// kernels/rope: rotary position embedding (HF rotate_half layout) on the
// heads of one position, vectorized over the rotated pairs.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/rope.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/highway.h"

#include <cstdint>

#include "kernels/ops.h"

HWY_BEFORE_NAMESPACE();
namespace bitlens::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// x [heads, head_dim]; cos, sin [rotary_dim / 2]. Pair i is (x[i], x[i + half]).
void RopeHeads(float* x, int64_t heads, int64_t head_dim, int64_t rotary_dim, const float* cos, const float* sin) {
  const hn::ScalableTag<float> df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t half = rotary_dim / 2;
  const int64_t half_vec = half - half % lanes;
  for (int64_t h = 0; h < heads; ++h) {
    float* x1 = x + h * head_dim;
    float* x2 = x1 + half;
    for (int64_t i = 0; i < half_vec; i += lanes) {
      const auto a = hn::LoadU(df, x1 + i), b = hn::LoadU(df, x2 + i);
      const auto c = hn::LoadU(df, cos + i), s = hn::LoadU(df, sin + i);
      hn::StoreU(hn::Sub(hn::Mul(a, c), hn::Mul(b, s)), df, x1 + i);
      hn::StoreU(hn::Add(hn::Mul(b, c), hn::Mul(a, s)), df, x2 + i);
    }
    for (int64_t i = half_vec; i < half; ++i) {
      const float a = x1[i], b = x2[i];
      x1[i] = a * cos[i] - b * sin[i];
      x2[i] = b * cos[i] + a * sin[i];
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bitlens::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitlens::kernels {

HWY_EXPORT(RopeHeads);

void ApplyRope(float* x, int64_t heads, int64_t head_dim, int64_t rotary_dim, const float* cos, const float* sin) {
  HWY_DYNAMIC_DISPATCH(RopeHeads)(x, heads, head_dim, rotary_dim, cos, sin);
}

}  // namespace bitlens::kernels
#endif  // HWY_ONCE
