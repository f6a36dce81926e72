// kernels/activation: elementwise SiLU, exact (erf) GELU, tanh GELU,
// QuickGELU and ReLU, plain and gated (SwiGLU / GeGLU), vectorized with
// Highway runtime dispatch. All sigmoid forms are written as x * sigmoid(t),
// which keeps relative accuracy where 1 + tanh(t) would cancel.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/activation.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

#include <cstdint>

#include "base/thread_pool.h"
#include "kernels/ops.h"

HWY_BEFORE_NAMESPACE();
namespace bitlens::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// x * sigmoid(t), written so that exp never overflows: with e = exp(-|t|),
// sigmoid(t) = 1 / (1 + e) for t >= 0 and e / (1 + e) for t < 0. Relative
// error is a few ulp plus u*|t| from rounding t itself (as in torch's f32).
template <class D, class V>
HWY_INLINE V XSigmoid(D d, V x, V t) {
  const V e = hn::Exp(d, hn::Neg(hn::Abs(t)));
  const V num = hn::IfThenElse(hn::Lt(t, hn::Zero(d)), hn::Mul(x, e), x);
  return hn::Div(num, hn::Add(hn::Set(d, 1.0), e));
}

// erfc(z) for z >= 0 with fractional error below 1.2e-7 (the Chebyshev
// fit of Press et al., Numerical Recipes, Sec. 6.2 "erfcc"):
//   t = 1 / (1 + z/2);  erfc(z) = t * exp(-z^2 + P(t)).
// Evaluated in double where the target has it, so only the fit's own error
// remains (in f32 the rounding of P(t) - z^2 alone costs ~1e-6 relative).
template <class D, class V>
HWY_INLINE V Erfc(D d, V z) {
  using T = hn::TFromD<D>;
  const V t = hn::Div(hn::Set(d, T(1)), hn::MulAdd(hn::Set(d, T(0.5)), z, hn::Set(d, T(1))));
  V p = hn::Set(d, T(0.17087277));
  p = hn::MulAdd(p, t, hn::Set(d, T(-0.82215223)));
  p = hn::MulAdd(p, t, hn::Set(d, T(1.48851587)));
  p = hn::MulAdd(p, t, hn::Set(d, T(-1.13520398)));
  p = hn::MulAdd(p, t, hn::Set(d, T(0.27886807)));
  p = hn::MulAdd(p, t, hn::Set(d, T(-0.18628806)));
  p = hn::MulAdd(p, t, hn::Set(d, T(0.09678418)));
  p = hn::MulAdd(p, t, hn::Set(d, T(0.37409196)));
  p = hn::MulAdd(p, t, hn::Set(d, T(1.00002368)));
  p = hn::MulAdd(p, t, hn::Set(d, T(-1.26551223)));
  return hn::Mul(t, hn::Exp(d, hn::Sub(p, hn::Mul(z, z))));
}

// gelu(x) = x * Phi(x) = x * erfc(-x / sqrt2) / 2. For x < 0 that is
// 0.5 x erfc(|x|/sqrt2) directly (no cancellation); for x >= 0, x - 0.5 x erfc.
template <class D, class V>
HWY_INLINE V GeluErf(D d, V x) {
  using T = hn::TFromD<D>;
  const V z = hn::Mul(hn::Abs(x), hn::Set(d, T(0.70710678118654752440)));
  const V half_x_erfc = hn::Mul(hn::Mul(hn::Set(d, T(0.5)), x), Erfc(d, z));
  return hn::IfThenElse(hn::Lt(x, hn::Zero(d)), half_x_erfc, hn::Sub(x, half_x_erfc));
}

template <Activation kAct>
HWY_INLINE VF Apply(DF df, VF x) {
  if constexpr (kAct == Activation::kSilu) {
    return XSigmoid(df, x, x);
  } else if constexpr (kAct == Activation::kGelu) {
    return GeluErf(df, x);
  } else if constexpr (kAct == Activation::kGeluTanh) {
    // 0.5 x (1 + tanh(a)) = x * sigmoid(2a), a = sqrt(2/pi) (x + 0.044715 x^3)
    const VF x3 = hn::Mul(hn::Mul(x, x), x);
    const VF a = hn::Mul(hn::Set(df, 0.79788456080286536f), hn::MulAdd(hn::Set(df, 0.044715f), x3, x));
    return XSigmoid(df, x, hn::Add(a, a));
  } else if constexpr (kAct == Activation::kQuickGelu) {
    return XSigmoid(df, x, hn::Mul(hn::Set(df, 1.702f), x));
  } else {
    return hn::Max(x, hn::Zero(df));
  }
}

#if HWY_HAVE_FLOAT64
// Exact GELU in double lanes: gate[i] = gelu(gate[i]) (* up[i]), rounded once.
void GeluErfF64(float* gate, const float* up, int64_t n) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dh;  // as many floats as doubles
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(dd));
  const int64_t n_vec = n - n % lanes;
  auto one = [&](const float* g, const float* u, float* out) {
    auto v = GeluErf(dd, hn::PromoteTo(dd, hn::LoadU(dh, g)));
    if (u) v = hn::Mul(v, hn::PromoteTo(dd, hn::LoadU(dh, u)));
    hn::StoreU(hn::DemoteTo(dh, v), dh, out);
  };
  for (int64_t i = 0; i < n_vec; i += lanes) one(gate + i, up ? up + i : nullptr, gate + i);
  const int64_t rest = n - n_vec;
  if (rest == 0) return;
  HWY_ALIGN float g[HWY_MAX_BYTES / sizeof(float)];
  HWY_ALIGN float u[HWY_MAX_BYTES / sizeof(float)];
  for (int64_t i = 0; i < lanes; ++i) {
    g[i] = i < rest ? gate[n_vec + i] : 0.0f;
    u[i] = (up && i < rest) ? up[n_vec + i] : 0.0f;
  }
  one(g, up ? u : nullptr, g);
  for (int64_t i = 0; i < rest; ++i) gate[n_vec + i] = g[i];
}
#endif

// gate[i] = act(gate[i]) (* up[i] when up is non-null), in place. The ragged
// tail runs through the same vector code via a padded stack buffer.
template <Activation kAct>
void ApplyAll(float* gate, const float* up, int64_t n) {
#if HWY_HAVE_FLOAT64
  if constexpr (kAct == Activation::kGelu) return GeluErfF64(gate, up, n);
#endif
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t n_vec = n - n % lanes;
  for (int64_t i = 0; i < n_vec; i += lanes) {
    VF v = Apply<kAct>(df, hn::LoadU(df, gate + i));
    if (up) v = hn::Mul(v, hn::LoadU(df, up + i));
    hn::StoreU(v, df, gate + i);
  }
  const int64_t rest = n - n_vec;
  if (rest == 0) return;
  HWY_ALIGN float g[HWY_MAX_BYTES / sizeof(float)];
  HWY_ALIGN float u[HWY_MAX_BYTES / sizeof(float)];
  for (int64_t i = 0; i < lanes; ++i) {
    g[i] = i < rest ? gate[n_vec + i] : 0.0f;
    u[i] = (up && i < rest) ? up[n_vec + i] : 0.0f;
  }
  VF v = Apply<kAct>(df, hn::Load(df, g));
  if (up) v = hn::Mul(v, hn::Load(df, u));
  hn::Store(v, df, g);
  for (int64_t i = 0; i < rest; ++i) gate[n_vec + i] = g[i];
}

void ActivateDispatch(Activation act, float* gate, const float* up, int64_t n) {
  switch (act) {
    case Activation::kSilu:
      return ApplyAll<Activation::kSilu>(gate, up, n);
    case Activation::kGelu:
      return ApplyAll<Activation::kGelu>(gate, up, n);
    case Activation::kGeluTanh:
      return ApplyAll<Activation::kGeluTanh>(gate, up, n);
    case Activation::kQuickGelu:
      return ApplyAll<Activation::kQuickGelu>(gate, up, n);
    case Activation::kRelu:
      return ApplyAll<Activation::kRelu>(gate, up, n);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bitlens::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitlens::kernels {

HWY_EXPORT(ActivateDispatch);

namespace {

// Elementwise, so any split gives the same results. Small inputs (decode)
// stay on the calling thread; prefill-sized ones (e.g. 577 x 4096) are split
// in chunks that are whole multiples of every vector width.
void ActivateSplit(Activation act, float* gate, const float* up, int64_t n) {
  constexpr int64_t kSerialBelow = 32768, kChunk = 4096;
  if (n < kSerialBelow) return HWY_DYNAMIC_DISPATCH(ActivateDispatch)(act, gate, up, n);
  auto chunks = [&](size_t begin, size_t end, size_t /*worker*/) {
    const int64_t b = static_cast<int64_t>(begin), e = static_cast<int64_t>(end);
    HWY_DYNAMIC_DISPATCH(ActivateDispatch)(act, gate + b, up ? up + b : nullptr, e - b);
  };
  ParallelFor(static_cast<size_t>(n), kChunk, chunks);
}

}  // namespace

void Activate(Activation act, float* x, int64_t n) { ActivateSplit(act, x, nullptr, n); }

void GatedActivate(Activation act, float* gate, const float* up, int64_t n) { ActivateSplit(act, gate, up, n); }

}  // namespace bitlens::kernels
#endif  // HWY_ONCE
