// Tests for kernels/ops: the scalar references pinned on hand-computed cases,
// then every fast kernel against its reference on random shapes with ragged
// edges, every weight dtype and thread counts 1 and 2. Failures print numbers.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "base/f16.h"
#include "base/thread_pool.h"
#include "kernels/ops.h"

namespace bitlens::kernels {
namespace {

// Unit roundoff of f32 (round to nearest): 2^-24.
constexpr double kU = 5.9604644775390625e-08;

std::vector<float> Random(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Restores the default thread count when a test leaves.
struct ThreadsGuard {
  ~ThreadsGuard() { SetNumThreads(0); }
};

// A weight matrix [n, k] stored in `dtype`, with its exact f32 values.
struct TestWeights {
  DType dtype;
  int64_t n, k;
  std::vector<float> f32;      // exact values the stored data decodes to
  std::vector<uint16_t> half;  // storage for F16/BF16
  WeightView view() const {
    return WeightView{dtype, dtype == DType::kF32 ? static_cast<const void*>(f32.data()) : half.data(), n, k};
  }
};

TestWeights MakeWeights(DType dtype, int64_t n, int64_t k, std::mt19937& rng) {
  TestWeights w{dtype, n, k, Random(static_cast<size_t>(n * k), rng), {}};
  if (dtype != DType::kF32) {
    w.half.resize(w.f32.size());
    for (size_t i = 0; i < w.f32.size(); ++i) {
      w.half[i] = dtype == DType::kF16 ? F32ToF16(w.f32[i]) : F32ToBf16(w.f32[i]);
      w.f32[i] = dtype == DType::kF16 ? F16ToF32(w.half[i]) : Bf16ToF32(w.half[i]);
    }
  }
  return w;
}

// ---------------------------------------------------------------------------
// The references themselves, on cases small enough to compute by hand.

TEST(KernelsRef, RmsNormOfThreeFour) {
  // mean(9, 16) = 12.5; 1/sqrt(12.5) = 0.28284271
  const float x[2] = {3, 4}, w[2] = {1, 2};
  float y[2];
  RmsNormRef(x, w, 1, 2, 0.0f, y);
  // The outputs are f32: equal to the exact value rounded to nearest.
  EXPECT_EQ(y[0], static_cast<float>(3 / std::sqrt(12.5)));
  EXPECT_EQ(y[1], static_cast<float>(2 * 4 / std::sqrt(12.5)));
}

TEST(KernelsRef, LayerNormCentersAndScales) {
  // mean 2, biased variance 2/3
  const float x[3] = {1, 2, 3}, w[3] = {1, 1, 2}, b[3] = {0, 0.5f, 0};
  float y[3];
  LayerNormRef(x, w, b, 1, 3, 0.0f, y);
  const double s = std::sqrt(1.5);
  EXPECT_NEAR(y[0], -s, 1e-6);
  EXPECT_NEAR(y[1], 0.5, 1e-6);
  EXPECT_NEAR(y[2], 2 * s, 1e-6);
}

TEST(KernelsRef, SoftmaxOfKnownRow) {
  float x[3] = {0, std::log(2.0f), std::log(5.0f)};  // exp: 1, 2, 5
  SoftmaxRef(x, 1, 3);
  EXPECT_NEAR(x[0], 1.0 / 8, 1e-7);
  EXPECT_NEAR(x[1], 2.0 / 8, 1e-7);
  EXPECT_NEAR(x[2], 5.0 / 8, 1e-7);
  float big[2] = {1000, 1000};  // max-subtraction keeps this finite
  SoftmaxRef(big, 1, 2);
  EXPECT_EQ(big[0], 0.5f);
}

TEST(KernelsRef, ActivationsAtKnownPoints) {
  float x[5] = {1, 1, 1, 1, -1};
  float v;
  v = x[0];
  ActivateRef(Activation::kSilu, &v, 1);
  EXPECT_NEAR(v, 1 / (1 + std::exp(-1.0)), 1e-7);  // 0.7310586
  v = 1;
  ActivateRef(Activation::kGelu, &v, 1);
  EXPECT_NEAR(v, 0.8413447460685429, 1e-7);  // Phi(1)
  v = 1;
  ActivateRef(Activation::kGeluTanh, &v, 1);
  EXPECT_NEAR(v, 0.8411919906082768, 1e-7);
  v = 1;
  ActivateRef(Activation::kQuickGelu, &v, 1);
  EXPECT_NEAR(v, 1 / (1 + std::exp(-1.702)), 1e-7);
  v = -1;
  ActivateRef(Activation::kRelu, &v, 1);
  EXPECT_EQ(v, 0.0f);
  // Far in the negative tail, where 1 + erf(x/sqrt2) would cancel even in
  // double: -10 * Phi(-10) = -7.6198530241605e-23.
  v = -10;
  ActivateRef(Activation::kGelu, &v, 1);
  EXPECT_NEAR(v, -7.6198530241605e-23, 1e-7 * 7.62e-23);
}

TEST(KernelsRef, RopeRotatesPairsByKnownAngle) {
  // head_dim 6, rotary_dim 4: pairs (0,2), (1,3) rotate; 4, 5 pass through.
  float x[6] = {1, 2, 3, 4, 5, 6};
  const float c[2] = {0.0f, std::cos(0.5f)}, s[2] = {1.0f, std::sin(0.5f)};  // 90 degrees, 0.5 rad
  ApplyRopeRef(x, 1, 6, 4, c, s);
  EXPECT_NEAR(x[0], -3, 1e-6);  // (1,3) by 90 deg -> (-3, 1)
  EXPECT_NEAR(x[2], 1, 1e-6);
  EXPECT_NEAR(x[1], 2 * std::cos(0.5) - 4 * std::sin(0.5), 1e-6);
  EXPECT_NEAR(x[3], 4 * std::cos(0.5) + 2 * std::sin(0.5), 1e-6);
  EXPECT_EQ(x[4], 5);
  EXPECT_EQ(x[5], 6);
}

TEST(KernelsRef, MatMulSmallByHand) {
  // x [2,2] = [[1,2],[3,4]], w [3,2] = [[1,0],[0,1],[1,1]], bias [10,20,30]
  const float x[4] = {1, 2, 3, 4}, wf[6] = {1, 0, 0, 1, 1, 1}, bias[3] = {10, 20, 30};
  float y[6];
  MatMulRef(x, 2, WeightView{DType::kF32, wf, 3, 2}, bias, y);
  const float want[6] = {11, 22, 33, 13, 24, 37};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(y[i], want[i]) << i;
  uint16_t wb[6];
  for (int i = 0; i < 6; ++i) wb[i] = F32ToBf16(wf[i]);
  MatMulRef(x, 2, WeightView{DType::kBF16, wb, 3, 2}, nullptr, y);
  EXPECT_EQ(y[5], 7.0f);
}

TEST(KernelsFast, MatMulWithEmptyInnerDimensionGivesBias) {
  // k = 0: every dot product is empty, so y = bias (or 0), for decode and prefill.
  const float bias[3] = {1, -2, 3};
  const float x_dummy[1] = {0};
  for (int64_t m : {1, 5}) {
    std::vector<float> y(m * 3, NAN);
    MatMul(x_dummy, m, WeightView{DType::kBF16, x_dummy, 3, 0}, bias, y.data());
    for (int64_t i = 0; i < m * 3; ++i) EXPECT_EQ(y[i], bias[i % 3]) << "m=" << m << " i=" << i;
  }
}

TEST(KernelsRef, AttentionWithOneKeyCopiesValue) {
  // One key: softmax weight 1, so out = v for every head (GQA: 2 q heads share it).
  const float q[8] = {1, 2, 3, 4, -1, -2, -3, -4}, k[4] = {5, 6, 7, 8}, v[4] = {0.5f, -1, 2, 9};
  float out[8];
  AttentionRef(q, 1, 2, k, v, 1, 1, 4, 0, true, 0.5f, out);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out[i], v[i % 4]) << i;
}

TEST(KernelsRef, AttentionCausalMaskAndTwoKeys) {
  // head_dim 1, scale 1: keys 0 and 1 (scores 0 and log 3), values 1 and 5.
  const float q[2] = {1, 1}, k[2] = {0, std::log(3.0f)}, v[2] = {1, 5};
  float out[2];
  AttentionRef(q, 2, 1, k, v, 2, 1, 1, 0, /*causal=*/true, 1.0f, out);
  EXPECT_NEAR(out[0], 1.0, 1e-6);                      // query 0 sees key 0 only
  EXPECT_NEAR(out[1], 0.25 * 1 + 0.75 * 5, 1e-6);      // weights 1/4, 3/4
  AttentionRef(q, 1, 1, k, v, 2, 1, 1, 0, /*causal=*/false, 1.0f, out);
  EXPECT_NEAR(out[0], 4.0, 1e-6);
  AttentionRef(q, 1, 1, k, v, 2, 1, 1, /*q_pos0=*/1, true, 1.0f, out);
  EXPECT_NEAR(out[0], 4.0, 1e-6);  // at position 1 the query sees both keys
}

// ---------------------------------------------------------------------------
// Fast paths against the references.

// Runs `check` once for every Highway target compiled in and supported by
// this CPU (e.g. AVX3, AVX2, SSE4), so the narrower targets a phone or an
// older PC would pick are tested too, not only the best one here.
void ForEachTarget(void (*check)(const char*)) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    check(hwy::TargetName(target));
  }
  hwy::SetSupportedTargetsForTest(0);
}

// MatMul tolerance: any summation order of the k products and the bias in
// f32 (with or without FMA) differs from the exact sum by at most
// gamma_{k+1} * (sum|x_i w_i| + |bias|), gamma_j = j*u/(1-j*u) (Higham,
// Accuracy and Stability, Sec. 3.1); the reference (double, rounded once to
// f32) adds u*|y|. So (k + 2) * u * (sum|x_i w_i| + |bias|) + u*|y| bounds a
// correct kernel; a dropped or doubled term costs ~sum/k, far above it.
void MatMulMatchesReferenceAllDtypesRaggedShapes(const char* target) {
  ThreadsGuard guard;
  std::mt19937 rng(1234);
  for (size_t threads : {1, 2}) {
    SetNumThreads(threads);
    for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
      double worst_ratio = 0.0, worst_abs = 0.0;
      for (int64_t k : {1, 3, 17, 63, 65, 257}) {
        for (int64_t n : {1, 3, 17, 65}) {
          for (int64_t m : {1, 2, 7}) {
            const TestWeights w = MakeWeights(dtype, n, k, rng);
            const std::vector<float> x = Random(static_cast<size_t>(m * k), rng);
            const std::vector<float> bias = Random(static_cast<size_t>(n), rng);
            const bool use_bias = (k + n + m) % 2 == 0;
            std::vector<float> want(static_cast<size_t>(m * n)), got(want.size(), NAN);
            MatMulRef(x.data(), m, w.view(), use_bias ? bias.data() : nullptr, want.data());
            MatMul(x.data(), m, w.view(), use_bias ? bias.data() : nullptr, got.data());
            for (int64_t r = 0; r < m; ++r) {
              for (int64_t o = 0; o < n; ++o) {
                double mag = 0.0;
                for (int64_t i = 0; i < k; ++i) mag += std::fabs(double(x[r * k + i]) * w.f32[o * k + i]);
                const double tol = (k + 2) * kU * (mag + (use_bias ? std::fabs(bias[o]) : 0.0)) +
                                   kU * std::fabs(want[r * n + o]) + 1e-30;
                const double diff = std::fabs(double(got[r * n + o]) - want[r * n + o]);
                worst_ratio = std::max(worst_ratio, diff / tol);
                worst_abs = std::max(worst_abs, diff);
                ASSERT_LE(diff, tol) << DTypeName(dtype) << " m=" << m << " n=" << n << " k=" << k << " threads="
                                     << threads << " y[" << r << "," << o << "] got " << got[r * n + o]
                                     << " want " << want[r * n + o];
              }
            }
          }
        }
      }
      std::printf("[%s] MatMul %s threads=%zu: worst |diff| %.3g, worst diff/tol %.3f\n", target,
                  std::string(DTypeName(dtype)).c_str(), threads, worst_abs, worst_ratio);
    }
  }
}

// A larger prefill shape (exercises tiling over m and the BLAS path if used).
void MatMulPrefillShapesMatchReference(const char* target) {
  ThreadsGuard guard;
  std::mt19937 rng(99);
  for (size_t threads : {1, 2}) {
    SetNumThreads(threads);
    for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
      const int64_t m = 37, n = 131, k = 259;
      const TestWeights w = MakeWeights(dtype, n, k, rng);
      const std::vector<float> x = Random(static_cast<size_t>(m * k), rng), bias = Random(n, rng);
      std::vector<float> want(m * n), got(m * n, NAN);
      MatMulRef(x.data(), m, w.view(), bias.data(), want.data());
      MatMul(x.data(), m, w.view(), bias.data(), got.data());
      double worst = 0.0;
      for (int64_t r = 0; r < m; ++r) {
        for (int64_t o = 0; o < n; ++o) {
          double mag = std::fabs(bias[o]);
          for (int64_t i = 0; i < k; ++i) mag += std::fabs(double(x[r * k + i]) * w.f32[o * k + i]);
          const double diff = std::fabs(double(got[r * n + o]) - want[r * n + o]);
          const double tol = (k + 2) * kU * mag + kU * std::fabs(want[r * n + o]);
          worst = std::max(worst, diff / tol);
          ASSERT_LE(diff, tol) << DTypeName(dtype) << " threads=" << threads << " y[" << r << "," << o << "] got "
                               << got[r * n + o] << " want " << want[r * n + o];
        }
      }
      std::printf("[%s] MatMul prefill %s threads=%zu: worst diff/tol %.3f\n", target, std::string(DTypeName(dtype)).c_str(),
                  threads, worst);
    }
  }
}

void MatMulIsDeterministicForFixedThreadCount(const char* target) {
  // Each output is computed by the same operation sequence whatever tile or
  // thread it lands in, so repeated calls and even different thread counts
  // give bit-identical results.
  ThreadsGuard guard;
  std::mt19937 rng(5);
  const TestWeights w = MakeWeights(DType::kBF16, 300, 513, rng);
  for (int64_t m : {1, 9}) {
    const std::vector<float> x = Random(m * 513, rng);
    std::vector<float> first;
    for (size_t threads : {1, 2}) {
      SetNumThreads(threads);
      std::vector<float> a(m * 300), b(m * 300);
      MatMul(x.data(), m, w.view(), nullptr, a.data());
      MatMul(x.data(), m, w.view(), nullptr, b.data());
      EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << "m=" << m << " threads=" << threads;
      if (first.empty()) first = a;
      EXPECT_EQ(0, std::memcmp(a.data(), first.data(), a.size() * sizeof(float)))
          << "m=" << m << ": threads=" << threads << " differs from threads=1";
    }
  }
}

// Norms: f32 sums of dim terms are within dim*u of exact (Higham); the
// per-output bounds are derived next to the assertions.
void RmsNormAndLayerNormMatchReference(const char* target) {
  ThreadsGuard guard;
  std::mt19937 rng(7);
  for (size_t threads : {1, 2}) {
    SetNumThreads(threads);
    double worst_rms = 0, worst_ln = 0;
    for (int64_t dim : {1, 3, 17, 63, 65, 257, 1031}) {
      for (int64_t rows : {1, 2, 7, 40}) {  // 40 x 1031 takes the multithreaded split
        const std::vector<float> x = Random(rows * dim, rng, -3.0f, 5.0f);  // non-zero mean for LayerNorm
        const std::vector<float> w = Random(dim, rng), b = Random(dim, rng);
        std::vector<float> want(rows * dim), got(rows * dim, NAN);
        for (int pass = 0; pass < 2; ++pass) {
          if (pass == 0) {
            RmsNormRef(x.data(), w.data(), rows, dim, 1e-6f, want.data());
            RmsNorm(x.data(), w.data(), rows, dim, 1e-6f, got.data());
          } else {
            LayerNormRef(x.data(), w.data(), b.data(), rows, dim, 1e-5f, want.data());
            LayerNorm(x.data(), w.data(), b.data(), rows, dim, 1e-5f, got.data());
          }
          for (int64_t r = 0; r < rows; ++r) {
            const float* xr = x.data() + r * dim;
            double row_max = 0, mean = 0, mean_abs = 0, var = 0;
            for (int64_t i = 0; i < dim; ++i) {
              row_max = std::max(row_max, double(std::fabs(want[r * dim + i])));
              mean += xr[i] / double(dim);
              mean_abs += std::fabs(xr[i]) / double(dim);
            }
            for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean) / double(dim);
            const double inv = 1.0 / std::sqrt(var + 1e-5);
            for (int64_t i = 0; i < dim; ++i) {
              const double diff = std::fabs(double(got[r * dim + i]) - want[r * dim + i]);
              // RmsNorm: every output carries the relative error of the one
              // scale factor (a sum of dim squares), bounded by the row max.
              // LayerNorm: the f32 mean is off by (dim+1)*u*mean|x|, which
              // shifts every x_i - mean; the variance and scale add
              // (dim/2 + 6)*u relative to |x_i - mean|; both are then scaled
              // by inv*|w_i|; the last multiply-add rounds by 2u|y_i|.
              const double tol =
                  pass == 0 ? (dim + 8) * kU * row_max + 4 * kU * std::fabs(want[r * dim + i]) + 1e-30
                            : std::fabs(w[i]) * inv *
                                      ((dim + 1) * kU * mean_abs + (dim / 2.0 + 6) * kU * std::fabs(xr[i] - mean)) +
                                  2 * kU * std::fabs(want[r * dim + i]) + 1e-30;
              (pass == 0 ? worst_rms : worst_ln) = std::max(pass == 0 ? worst_rms : worst_ln, diff / tol);
              ASSERT_LE(diff, tol) << (pass == 0 ? "RmsNorm" : "LayerNorm") << " dim=" << dim << " rows=" << rows
                                   << " [" << r << "," << i << "] got " << got[r * dim + i] << " want "
                                   << want[r * dim + i];
            }
          }
        }
      }
    }
    std::printf("[%s] RmsNorm threads=%zu worst diff/tol %.3f; LayerNorm worst diff/tol %.3f\n", target, threads, worst_rms,
                worst_ln);
  }
}

// Softmax: each output is exp(x_i - max) / sum. Rounding x_i - max to f32
// moves exp by a relative u*|x_i - max| (torch rounds the same way); a vector
// exp accurate to a few ulp and an f32 sum of n terms add (n + 8) * u.
void SoftmaxMatchesReference(const char* target) {
  ThreadsGuard guard;
  std::mt19937 rng(11);
  double worst = 0;
  for (size_t threads : {1, 2}) {
  SetNumThreads(threads);
  for (int64_t n : {1, 3, 17, 63, 65, 257, 1031}) {
    for (int64_t rows : {1, 2, 7, 40}) {  // 40 x 1031 takes the multithreaded split
      std::vector<float> x = Random(rows * n, rng, -20.0f, 20.0f);
      std::vector<float> want = x, got = x;
      SoftmaxRef(want.data(), rows, n);
      Softmax(got.data(), rows, n);
      std::vector<float> row_maxes(rows);
      for (int64_t r = 0; r < rows; ++r) row_maxes[r] = *std::max_element(x.begin() + r * n, x.begin() + (r + 1) * n);
      for (int64_t i = 0; i < rows * n; ++i) {
        const float row_max = row_maxes[i / n];
        const double diff = std::fabs(double(got[i]) - want[i]);
        const double tol = (n + 8 + std::fabs(x[i] - row_max)) * kU * want[i] + 1e-38;
        worst = std::max(worst, diff / tol);
        ASSERT_LE(diff, tol) << "n=" << n << " rows=" << rows << " threads=" << threads << " i=" << i << " got "
                             << got[i] << " want " << want[i];
      }
    }
  }
  }
  std::printf("[%s] Softmax worst diff/tol %.3f\n", target, worst);
}

// Activations, against references computed in double without cancellation.
// Exact GELU: 1e-6 relative for every x (what the model code asks for to
// match torch's exact gelu). Sigmoid forms x * sigmoid(t) (SiLU t = x,
// QuickGELU t = 1.702x, tanh-GELU t = 2 sqrt(2/pi)(x + 0.044715 x^3)):
// each f32 rounding in computing t (0 for SiLU; 2 for QuickGELU: the constant
// 1.702 and the product; 6 for tanh-GELU: two constants, x*x, *x, the
// multiply-add, *sqrt(2/pi)) moves exp(-|t|) by up to
// u*|t| relative (torch computes t the same way), plus a few ulp for exp and
// the division: (roundings * |t| + 8) * u relative. ReLU is exact. 1e-38
// absolute admits results that underflow to subnormals or 0.
void ActivationsMatchReference(const char* target) {
  ThreadsGuard guard;
  std::mt19937 rng(13);
  // Longer than the 32768 elements above which the work is split over threads.
  std::vector<float> x = Random(40009, rng, -12.0f, 12.0f);
  for (float special : {0.0f, -0.0f, 1e-20f, -1e-20f, 3e-4f, -3e-4f, 40.0f, -40.0f, 100.0f, -100.0f})
    x.push_back(special);
  const std::vector<float> up = Random(x.size(), rng);
  for (size_t threads : {1, 2}) {
  SetNumThreads(threads);
  for (Activation act :
       {Activation::kSilu, Activation::kGelu, Activation::kGeluTanh, Activation::kQuickGelu, Activation::kRelu}) {
    for (size_t len : {size_t{1}, size_t{3}, size_t{17}, x.size()}) {
      std::vector<float> want(x.begin(), x.begin() + len), got = want;
      ActivateRef(act, want.data(), len);
      Activate(act, got.data(), len);
      std::vector<float> gwant(x.begin(), x.begin() + len), ggot = gwant;
      GatedActivateRef(act, gwant.data(), up.data(), len);
      GatedActivate(act, ggot.data(), up.data(), len);
      double worst = 0;
      for (size_t i = 0; i < len; ++i) {
        const double xd = x[i];
        double t_roundings = 0.0;  // |t| times the roundings made computing the sigmoid argument t
        if (act == Activation::kQuickGelu) t_roundings = 2 * 1.702 * std::fabs(xd);
        if (act == Activation::kGeluTanh)
          t_roundings = 6 * 2 * std::sqrt(2 / M_PI) * std::fabs(xd + 0.044715 * xd * xd * xd);
        const double rel = act == Activation::kGelu   ? 1e-6
                           : act == Activation::kRelu ? 0.0
                                                      : (t_roundings + 8) * kU;
        const double tol = rel * std::fabs(want[i]) + 1e-38;
        const double diff = std::fabs(double(got[i]) - want[i]);
        worst = std::max(worst, diff / tol);
        ASSERT_LE(diff, tol) << "act " << int(act) << " x=" << x[i] << " got " << got[i] << " want " << want[i];
        // gated: the same, times |up|, plus the rounding of the product
        const double gtol = rel * std::fabs(want[i]) * std::fabs(up[i]) + 2 * kU * std::fabs(gwant[i]) + 1e-38;
        ASSERT_LE(std::fabs(double(ggot[i]) - gwant[i]), gtol)
            << "gated act " << int(act) << " x=" << x[i] << " got " << ggot[i] << " want " << gwant[i];
      }
      if (len == x.size())
        std::printf("[%s] Activation %d threads=%zu worst diff/tol %.3f\n", target, int(act), threads, worst);
    }
  }
  }
}

void RopeMatchesReference(const char* target) {
  std::mt19937 rng(17);
  for (int64_t head_dim : {2, 6, 64, 96, 128}) {
    for (int64_t rotary_dim : {head_dim, head_dim / 2 - (head_dim / 2) % 2}) {
      if (rotary_dim == 0) continue;
      for (int64_t heads : {1, 3, 32}) {
        std::vector<float> x = Random(heads * head_dim, rng, -4.0f, 4.0f);
        std::vector<float> angle = Random(rotary_dim / 2, rng, -100.0f, 100.0f), c, s;
        for (float a : angle) c.push_back(std::cos(a)), s.push_back(std::sin(a));
        std::vector<float> want = x, got = x;
        ApplyRopeRef(want.data(), heads, head_dim, rotary_dim, c.data(), s.data());
        ApplyRope(got.data(), heads, head_dim, rotary_dim, c.data(), s.data());
        for (size_t i = 0; i < x.size(); ++i) {
          // two products and one add (FMA or not): within 3u of the pair's magnitude
          const size_t d = i % head_dim, h = i / head_dim, half = rotary_dim / 2;
          const double mag = d < size_t(rotary_dim)
                                 ? std::fabs(x[h * head_dim + d % half]) + std::fabs(x[h * head_dim + d % half + half])
                                 : 0.0;
          ASSERT_LE(std::fabs(double(got[i]) - want[i]), 3 * kU * mag)
              << "head_dim=" << head_dim << " rotary_dim=" << rotary_dim << " i=" << i << " got " << got[i]
              << " want " << want[i];
        }
      }
    }
  }
}

// Attention: out is a convex combination of values, so errors are measured in
// units of max|v|. Score errors of eps_s (relative, from an f32 dot of
// head_dim terms: head_dim*u*|q||k|*scale) move the weights by about eps_s
// relative; the weighted sum of n_kv values adds n_kv*u. Tolerance per element:
// ((head_dim + 4) * u * max_score_mag + (n_kv + 8) * u) * max|v|.
void AttentionMatchesReference(const char* target) {
  ThreadsGuard guard;
  std::mt19937 rng(19);
  struct Case {
    int64_t n_q, n_heads, n_kv, n_kv_heads, head_dim, q_pos0;
    bool causal;
  };
  const Case cases[] = {
      {1, 1, 1, 1, 1, 0, true},      {1, 4, 17, 2, 3, 16, true},   {7, 4, 7, 4, 64, 0, true},
      {2, 8, 65, 2, 17, 63, true},   {5, 6, 5, 6, 63, 0, false},   {7, 32, 257, 8, 128, 250, true},
      {9, 3, 9, 1, 65, 0, false},    {3, 2, 40, 1, 8, 10, true},
      // Visible ranges ending inside and across 64-key blocks, GQA groups of 3.
      {70, 6, 130, 2, 72, 60, true}, {5, 4, 200, 4, 80, 0, false},
      // head_dim beyond the blocked path's stack rows (per-pair fallback).
      {2, 2, 5, 1, 520, 3, true},
  };
  for (size_t threads : {1, 2}) {
    SetNumThreads(threads);
    double worst = 0;
    for (const Case& c : cases) {
      const auto q = Random(c.n_q * c.n_heads * c.head_dim, rng, -2, 2);
      const auto k = Random(c.n_kv * c.n_kv_heads * c.head_dim, rng, -2, 2);
      const auto v = Random(c.n_kv * c.n_kv_heads * c.head_dim, rng, -3, 3);
      const float scale = 1.0f / std::sqrt(float(c.head_dim));
      std::vector<float> want(q.size()), got(q.size(), NAN), scratch(NumThreads() * c.n_kv, NAN);
      AttentionRef(q.data(), c.n_q, c.n_heads, k.data(), v.data(), c.n_kv, c.n_kv_heads, c.head_dim, c.q_pos0,
                   c.causal, scale, want.data());
      Attention(q.data(), c.n_q, c.n_heads, k.data(), v.data(), c.n_kv, c.n_kv_heads, c.head_dim, c.q_pos0, c.causal,
                scale, scratch.data(), got.data());
      double vmax = 0;
      for (float e : v) vmax = std::max(vmax, double(std::fabs(e)));
      const double score_mag = 4.0 * c.head_dim * scale;  // |q_d|,|k_d| <= 2
      const double tol = ((c.head_dim + 4) * kU * score_mag + (c.n_kv + 8) * kU) * vmax;
      for (size_t i = 0; i < want.size(); ++i) {
        const double diff = std::fabs(double(got[i]) - want[i]);
        worst = std::max(worst, diff / tol);
        ASSERT_LE(diff, tol) << "n_q=" << c.n_q << " heads=" << c.n_heads << "/" << c.n_kv_heads
                             << " n_kv=" << c.n_kv << " head_dim=" << c.head_dim << " q_pos0=" << c.q_pos0
                             << " causal=" << c.causal << " threads=" << threads << " i=" << i << " got " << got[i]
                             << " want " << want[i];
      }
    }
    std::printf("[%s] Attention threads=%zu worst diff/tol %.3f\n", target, threads, worst);
  }
}

TEST(KernelsFast, MatMulMatchesReferenceAllDtypesRaggedShapes) { ForEachTarget(MatMulMatchesReferenceAllDtypesRaggedShapes); }
TEST(KernelsFast, MatMulPrefillShapesMatchReference) { ForEachTarget(MatMulPrefillShapesMatchReference); }
TEST(KernelsFast, MatMulIsDeterministicForFixedThreadCount) { ForEachTarget(MatMulIsDeterministicForFixedThreadCount); }
TEST(KernelsFast, RmsNormAndLayerNormMatchReference) { ForEachTarget(RmsNormAndLayerNormMatchReference); }
TEST(KernelsFast, SoftmaxMatchesReference) { ForEachTarget(SoftmaxMatchesReference); }
TEST(KernelsFast, ActivationsMatchReference) { ForEachTarget(ActivationsMatchReference); }
TEST(KernelsFast, RopeMatchesReference) { ForEachTarget(RopeMatchesReference); }
TEST(KernelsFast, AttentionMatchesReference) { ForEachTarget(AttentionMatchesReference); }

// Attention rows are computed the same way whichever rows share their block
// or thread, so outputs are bit-identical across thread counts.
void AttentionIsIdenticalAcrossThreadCounts(const char* target) {
  ThreadsGuard guard;
  std::mt19937 rng(23);
  const int64_t n_q = 37, n_heads = 8, n_kv = 150, n_kv_heads = 2, head_dim = 40;
  const auto q = Random(n_q * n_heads * head_dim, rng), k = Random(n_kv * n_kv_heads * head_dim, rng),
             v = Random(n_kv * n_kv_heads * head_dim, rng);
  std::vector<float> first;
  for (size_t threads : {1, 2, 3}) {
    SetNumThreads(threads);
    std::vector<float> out(q.size()), scratch(NumThreads() * n_kv);
    Attention(q.data(), n_q, n_heads, k.data(), v.data(), n_kv, n_kv_heads, head_dim, n_kv - n_q, true, 0.15f,
              scratch.data(), out.data());
    if (first.empty()) first = out;
    EXPECT_EQ(0, std::memcmp(out.data(), first.data(), out.size() * sizeof(float)))
        << "threads=" << threads << " differs from threads=1";
  }
}
TEST(KernelsFast, AttentionIsIdenticalAcrossThreadCounts) { ForEachTarget(AttentionIsIdenticalAcrossThreadCounts); }

}  // namespace
}  // namespace bitlens::kernels
