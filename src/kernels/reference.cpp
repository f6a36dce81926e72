// kernels/reference: the scalar reference kernels, the truth every fast path
// is tested against. Written for clarity, not speed; dot products and norms
// accumulate in double so the reference is more accurate than any fast path.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "base/f16.h"
#include "kernels/ops.h"
#include "quant/qmatmul_ref.h"

namespace bitlens::kernels {
namespace {

float WeightAt(const WeightView& w, int64_t row, int64_t col) {
  const int64_t i = row * w.k + col;
  switch (w.dtype) {
    case DType::kF32:
      return static_cast<const float*>(w.data)[i];
    case DType::kF16:
      return F16ToF32(static_cast<const uint16_t*>(w.data)[i]);
    case DType::kBF16:
      return Bf16ToF32(static_cast<const uint16_t*>(w.data)[i]);
    default:
      return std::numeric_limits<float>::quiet_NaN();  // callers validate dtypes
  }
}

// In double, in forms without cancellation (erfc, x * sigmoid(t) with
// exp(-|t|)), so the reference is accurate to f32 rounding for every x.
double XSigmoid(double x, double t) {
  const double e = std::exp(-std::fabs(t));
  return t >= 0 ? x / (1.0 + e) : x * e / (1.0 + e);
}

float ActivateScalar(Activation act, float x) {
  const double xd = x;
  switch (act) {
    case Activation::kSilu:
      return static_cast<float>(XSigmoid(xd, xd));
    case Activation::kGelu:
      return static_cast<float>(0.5 * xd * std::erfc(-xd / std::sqrt(2.0)));  // = 0.5 x (1 + erf(x / sqrt2))
    case Activation::kGeluTanh: {
      // 0.5 x (1 + tanh(a)) = x * sigmoid(2a)
      const double a = std::sqrt(2.0 / M_PI) * (xd + 0.044715 * xd * xd * xd);
      return static_cast<float>(XSigmoid(xd, 2.0 * a));
    }
    case Activation::kQuickGelu:
      return static_cast<float>(XSigmoid(xd, 1.702 * xd));
    case Activation::kRelu:
      return x > 0.0f ? x : 0.0f;
  }
  return x;
}

}  // namespace

// x [m, k], w [n, k], bias [n] or null, y [m, n]
void MatMulRef(const float* x, int64_t m, const WeightView& w, const float* bias, float* y) {
  if (w.format != nullptr) {
    return quant::QMatMulRef(x, m, *w.format, static_cast<const uint8_t*>(w.data), w.n, w.k, bias, y);
  }
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t o = 0; o < w.n; ++o) {
      double acc = bias ? bias[o] : 0.0;
      for (int64_t i = 0; i < w.k; ++i) acc += static_cast<double>(x[r * w.k + i]) * WeightAt(w, o, i);
      y[r * w.n + o] = static_cast<float>(acc);
    }
  }
}

// x, y [rows, dim], weight [dim]
void RmsNormRef(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    double sum_sq = 0.0;
    for (int64_t i = 0; i < dim; ++i) sum_sq += static_cast<double>(xr[i]) * xr[i];
    const double inv = 1.0 / std::sqrt(sum_sq / static_cast<double>(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) y[r * dim + i] = static_cast<float>(xr[i] * inv * weight[i]);
  }
}

// x, y [rows, dim], weight, bias [dim]; biased variance like torch.
void LayerNormRef(const float* x, const float* weight, const float* bias, int64_t rows, int64_t dim, float eps,
                  float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    double mean = 0.0;
    for (int64_t i = 0; i < dim; ++i) mean += xr[i];
    mean /= static_cast<double>(dim);
    double var = 0.0;
    for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<double>(dim);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t i = 0; i < dim; ++i) {
      const double v = (xr[i] - mean) * inv * weight[i] + (bias ? bias[i] : 0.0f);
      y[r * dim + i] = static_cast<float>(v);
    }
  }
}

// x [rows, n], in place
void SoftmaxRef(float* x, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * n;
    float max = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) max = std::max(max, xr[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(xr[i]) - max);
    for (int64_t i = 0; i < n; ++i) xr[i] = static_cast<float>(std::exp(static_cast<double>(xr[i]) - max) / sum);
  }
}

void ActivateRef(Activation act, float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = ActivateScalar(act, x[i]);
}

void GatedActivateRef(Activation act, float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = ActivateScalar(act, gate[i]) * up[i];
}

// x [heads, head_dim]; cos, sin [rotary_dim / 2]
void ApplyRopeRef(float* x, int64_t heads, int64_t head_dim, int64_t rotary_dim, const float* cos,
                  const float* sin) {
  const int64_t half = rotary_dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* xh = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float x1 = xh[i], x2 = xh[i + half];
      xh[i] = x1 * cos[i] - x2 * sin[i];
      xh[i + half] = x2 * cos[i] + x1 * sin[i];
    }
  }
}

// q, out [n_q, n_heads, head_dim]; k, v [n_kv, n_kv_heads, head_dim]
void AttentionRef(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v, int64_t n_kv,
                  int64_t n_kv_heads, int64_t head_dim, int64_t q_pos0, bool causal, float scale, float* out) {
  const int64_t group = n_heads / n_kv_heads;
  std::vector<double> scores(static_cast<size_t>(std::max<int64_t>(n_kv, 1)));
  for (int64_t i = 0; i < n_q; ++i) {
    const int64_t visible = causal ? std::min(n_kv, q_pos0 + i + 1) : n_kv;
    for (int64_t h = 0; h < n_heads; ++h) {
      const float* qh = q + (i * n_heads + h) * head_dim;
      const int64_t kvh = h / group;
      double max = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < visible; ++j) {
        const float* kj = k + (j * n_kv_heads + kvh) * head_dim;
        double dot = 0.0;
        for (int64_t d = 0; d < head_dim; ++d) dot += static_cast<double>(qh[d]) * kj[d];
        scores[j] = dot * scale;
        max = std::max(max, scores[j]);
      }
      double sum = 0.0;
      for (int64_t j = 0; j < visible; ++j) {
        scores[j] = std::exp(scores[j] - max);
        sum += scores[j];
      }
      float* oh = out + (i * n_heads + h) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) {
        double acc = 0.0;
        for (int64_t j = 0; j < visible; ++j) acc += scores[j] * v[(j * n_kv_heads + kvh) * head_dim + d];
        oh[d] = visible > 0 ? static_cast<float>(acc / sum) : 0.0f;
      }
    }
  }
}

}  // namespace bitlens::kernels
