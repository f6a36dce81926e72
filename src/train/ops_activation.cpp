// train/ops_activation: elementwise activations (SiLU, exact GELU, tanh GELU,
// quick GELU, ReLU) and the gated MLP product act(gate)·up, with derivatives.
// The forward runs kernels::ActivateRef / GatedActivateRef themselves, so
// training sees bit for bit the activations that inference's reference uses.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "base/thread_pool.h"
#include "train/ops.h"

namespace bitlens::train {
namespace {

using kernels::Activation;

constexpr size_t kGrain = 1024;  // elements per work unit: enough work to hide a thread hand-off

// σ(t) without overflow for any sign of t.
double Sigmoid(double t) {
  const double e = std::exp(-std::fabs(t));
  return t >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

constexpr double kGeluTanhC = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluTanhA = 0.044715;
constexpr double kQuickGeluA = 1.702;

// act(x) and act'(x) in double, sharing one exp / erfc / tanh: the gated
// backward needs both, and these transcendental calls are its whole cost.
struct ActAndDerivative {
  double value, derivative;
};

ActAndDerivative Evaluate(Activation act, double x) {
  switch (act) {
    case Activation::kSilu: {  // x σ(x);  d/dx = σ + x σ (1 − σ)
      const double s = Sigmoid(x);
      return {x * s, s + x * s * (1.0 - s)};
    }
    case Activation::kGelu: {  // x Φ(x);  d/dx = Φ(x) + x φ(x)
      const double cdf = 0.5 * std::erfc(-x / std::sqrt(2.0));
      const double pdf = std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
      return {x * cdf, cdf + x * pdf};
    }
    case Activation::kGeluTanh: {  // a = c (x + 0.044715 x³);  0.5 x (1 + tanh a)
      const double th = std::tanh(kGeluTanhC * (x + kGeluTanhA * x * x * x));
      const double da = kGeluTanhC * (1.0 + 3.0 * kGeluTanhA * x * x);
      return {0.5 * x * (1.0 + th), 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * da};
    }
    case Activation::kQuickGelu: {  // x σ(a x);  d/dx = σ + a x σ (1 − σ)
      const double s = Sigmoid(kQuickGeluA * x);
      return {x * s, s + kQuickGeluA * x * s * (1.0 - s)};
    }
    case Activation::kRelu:  // torch's choice at 0: gradient 0
      return {x > 0.0 ? x : 0.0, x > 0.0 ? 1.0 : 0.0};
  }
  return {x, 1.0};
}

}  // namespace

// x, y [n]
void ActivationForward(Activation act, const float* x, int64_t n, float* y) {
  if (n <= 0) return;
  ParallelFor(static_cast<size_t>(n), kGrain, [&](size_t b, size_t e, size_t) {
    if (y + b != x + b) std::memcpy(y + b, x + b, sizeof(float) * (e - b));
    kernels::ActivateRef(act, y + b, static_cast<int64_t>(e - b));
  });
}

// x, dy, dx [n]:  dx += act'(x) · dy
void ActivationBackward(Activation act, const float* x, const float* dy, int64_t n, float* dx) {
  if (n <= 0 || dx == nullptr) return;
  ParallelFor(static_cast<size_t>(n), kGrain, [&](size_t b, size_t e, size_t) {
    for (size_t i = b; i < e; ++i) dx[i] = static_cast<float>(dx[i] + Evaluate(act, x[i]).derivative * dy[i]);
  });
}

// gate, up, out [n]:  out = act(gate) · up
void GatedForward(Activation act, const float* gate, const float* up, int64_t n, float* out) {
  if (n <= 0) return;
  ParallelFor(static_cast<size_t>(n), kGrain, [&](size_t b, size_t e, size_t) {
    if (out + b != gate + b) std::memcpy(out + b, gate + b, sizeof(float) * (e - b));
    kernels::GatedActivateRef(act, out + b, up + b, static_cast<int64_t>(e - b));
  });
}

// dgate += act'(gate) · up · dout;   dup += act(gate) · dout
void GatedBackward(Activation act, const float* gate, const float* up, const float* dout, int64_t n, float* dgate,
                   float* dup) {
  if (n <= 0 || (dgate == nullptr && dup == nullptr)) return;
  ParallelFor(static_cast<size_t>(n), kGrain, [&](size_t b, size_t e, size_t) {
    for (size_t i = b; i < e; ++i) {
      const ActAndDerivative a = Evaluate(act, gate[i]);
      if (dgate != nullptr) dgate[i] = static_cast<float>(dgate[i] + a.derivative * up[i] * dout[i]);
      if (dup != nullptr) dup[i] = static_cast<float>(dup[i] + a.value * dout[i]);
    }
  });
}

}  // namespace bitlens::train
