// Tests for train/ops (all but rope and attention): every gradient of every op
// against central finite differences on small odd shapes, forwards against the
// inference references or hand-computed values, accumulation (+=) semantics,
// and bit-identical results for 1 and 2 threads. Failures print the numbers.
#include <cblas.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/ops.h"
#include "train/ops.h"
#include "train_grad_check.h"

namespace bitlens::train {
namespace {

using bitlens::testing::Dot;
using bitlens::testing::ExpectGradientMatches;
using bitlens::testing::RandomVector;
using kernels::Activation;

// Finite-difference tolerances (h, rtol, atol), one per kind of op; why each
// is what it is is written in docs/training.md, section "Ops".
struct Tol {
  double h, rtol, atol;
};
// The loss is linear (or quadratic) in the checked input: central differences
// are exact up to the f32 rounding of the forward, divided by 2h.
constexpr Tol kLinearTol{1e-2, 2e-4, 5e-4};
// Smooth nonlinear ops (norms, activations): adds the O(h²·f''') truncation.
constexpr Tol kSmoothTol{1e-2, 1e-3, 2e-4};
// Losses returned in double from f32 logits: only truncation remains.
constexpr Tol kLossTol{1e-2, 2e-4, 5e-6};

void CheckGrad(const std::string& what, std::vector<float>& x, const std::vector<float>& analytic,
               const std::function<double()>& loss, Tol tol) {
  ExpectGradientMatches(what, x, analytic, loss, tol.h, tol.rtol, tol.atol);
}

// Restores the default thread count (and a single-threaded OpenBLAS, as the
// trainer runs it) around every test.
class TrainOpsTest : public ::testing::Test {
 protected:
  void SetUp() override { openblas_set_num_threads(1); }
  void TearDown() override { SetNumThreads(0); }
};

std::vector<float> Zeros(size_t n) { return std::vector<float>(n, 0.0f); }

// Element i of `twice` (backward run twice from zero) must be 2 × `once`.
void ExpectDoubled(const std::string& what, const std::vector<float>& once, const std::vector<float>& twice) {
  ASSERT_EQ(once.size(), twice.size());
  double worst = 0.0;
  size_t worst_i = 0;
  for (size_t i = 0; i < once.size(); ++i) {
    const double err = std::abs(twice[i] - 2.0 * once[i]) - 1e-5 * std::abs(2.0 * once[i]) - 1e-6;
    if (err > worst) {
      worst = err;
      worst_i = i;
    }
  }
  EXPECT_LE(worst, 0.0) << what << ": second backward did not accumulate at " << worst_i << ": once "
                        << once[worst_i] << ", twice " << twice[worst_i];
  double norm = 0.0;
  for (float g : once) norm += std::abs(g);
  EXPECT_GT(norm, 0.0) << what << ": gradient is all zero, the accumulation check proves nothing";
}

void ExpectBitIdentical(const std::string& what, const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      ADD_FAILURE() << what << ": 1 and 2 threads differ at " << i << ": " << a[i] << " vs " << b[i];
      return;
    }
  }
}

// ---------------------------------------------------------------------------
// Linear

// y[m, n] = x · wᵀ + b in double, the definition.
std::vector<double> NaiveLinear(const std::vector<float>& x, const std::vector<float>& w, const float* b, int64_t m,
                                int64_t k, int64_t n) {
  std::vector<double> y(static_cast<size_t>(m * n));
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      double s = b != nullptr ? b[j] : 0.0;
      for (int64_t i = 0; i < k; ++i) s += static_cast<double>(x[r * k + i]) * w[j * k + i];
      y[r * n + j] = s;
    }
  }
  return y;
}

TEST_F(TrainOpsTest, LinearForwardMatchesTheDefinition) {
  // n = 130 and k = 67 cross the 64-column blocks of the implementation.
  const int64_t m = 9, k = 67, n = 130;
  auto x = RandomVector(m * k, 1), w = RandomVector(n * k, 2), b = RandomVector(n, 3);
  for (const bool with_bias : {false, true}) {
    std::vector<float> y(m * n, 123.0f);  // forward must overwrite, not accumulate
    LinearForward(x.data(), w.data(), with_bias ? b.data() : nullptr, m, k, n, y.data());
    const auto ref = NaiveLinear(x, w, with_bias ? b.data() : nullptr, m, k, n);
    double worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      if (std::abs(y[i] - ref[i]) > worst) worst = std::abs(y[i] - ref[i]), at = i;
    }
    // |x|,|w| ~ N(0,1): products of k = 67 terms, rounding well under 1e-4.
    EXPECT_LT(worst, 1e-4) << "bias " << with_bias << " at " << at << ": " << y[at] << " vs " << ref[at];
  }
}

TEST_F(TrainOpsTest, LinearGradientsMatchFiniteDifferences) {
  const int64_t m = 5, k = 70, n = 67;
  auto x = RandomVector(m * k, 11), w = RandomVector(n * k, 12, 0.3f), b = RandomVector(n, 13);
  const auto probe = RandomVector(m * n, 14);
  std::vector<float> y(m * n);
  auto loss = [&] {
    LinearForward(x.data(), w.data(), b.data(), m, k, n, y.data());
    return Dot(probe, y);
  };
  auto dx = Zeros(m * k), dw = Zeros(n * k), db = Zeros(n);
  LinearBackward(probe.data(), x.data(), w.data(), m, k, n, dx.data(), dw.data(), db.data());
  CheckGrad("linear dx", x, dx, loss, kLinearTol);
  CheckGrad("linear dw", w, dw, loss, kLinearTol);
  CheckGrad("linear db", b, db, loss, kLinearTol);
}

TEST_F(TrainOpsTest, LinearBackwardAccumulatesAndSkipsNullGradients) {
  const int64_t m = 7, k = 33, n = 65;
  auto x = RandomVector(m * k, 21), w = RandomVector(n * k, 22), dy = RandomVector(m * n, 23);
  auto dx1 = Zeros(m * k), dw1 = Zeros(n * k), db1 = Zeros(n);
  LinearBackward(dy.data(), x.data(), w.data(), m, k, n, dx1.data(), dw1.data(), db1.data());
  auto dx2 = Zeros(m * k), dw2 = Zeros(n * k), db2 = Zeros(n);
  for (int rep = 0; rep < 2; ++rep) {
    LinearBackward(dy.data(), x.data(), w.data(), m, k, n, dx2.data(), dw2.data(), db2.data());
  }
  ExpectDoubled("linear dx", dx1, dx2);
  ExpectDoubled("linear dw", dw1, dw2);
  ExpectDoubled("linear db", db1, db2);
  // Only dw requested (w may then be null, as the patch embedding does).
  auto dw_only = Zeros(n * k);
  LinearBackward(dy.data(), x.data(), nullptr, m, k, n, nullptr, dw_only.data(), nullptr);
  for (size_t i = 0; i < dw_only.size(); ++i) ASSERT_EQ(dw_only[i], dw1[i]) << "dw alone differs at " << i;
}

// ---------------------------------------------------------------------------
// Embedding

TEST_F(TrainOpsTest, EmbeddingForwardCopiesRowsAndBackwardScattersRepeats) {
  const int64_t vocab = 11, dim = 67, t = 9;
  const std::vector<int32_t> ids = {3, 0, 3, 10, 7, 3, 1, 0, 9};  // 3 and 0 repeat
  auto table = RandomVector(vocab * dim, 31);
  std::vector<float> out(t * dim, -1.0f);
  EmbeddingForward(ids.data(), t, table.data(), dim, out.data());
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t c = 0; c < dim; ++c) {
      ASSERT_EQ(out[r * dim + c], table[ids[r] * dim + c]) << "row " << r << " col " << c;
    }
  }
  const auto probe = RandomVector(t * dim, 32);
  auto loss = [&] {
    EmbeddingForward(ids.data(), t, table.data(), dim, out.data());
    return Dot(probe, out);
  };
  auto dtable = Zeros(vocab * dim);
  EmbeddingBackward(ids.data(), t, probe.data(), dim, dtable.data());
  CheckGrad("embedding dtable", table, dtable, loss, kLinearTol);
  // Rows of unused ids stay exactly zero.
  for (int64_t c = 0; c < dim; ++c) EXPECT_EQ(dtable[2 * dim + c], 0.0f);
  auto twice = Zeros(vocab * dim);
  EmbeddingBackward(ids.data(), t, probe.data(), dim, twice.data());
  EmbeddingBackward(ids.data(), t, probe.data(), dim, twice.data());
  ExpectDoubled("embedding dtable", dtable, twice);
}

// ---------------------------------------------------------------------------
// LayerNorm / RMSNorm

TEST_F(TrainOpsTest, LayerNormForwardMatchesKernelReference) {
  const int64_t rows = 6, dim = 131;
  auto x = RandomVector(rows * dim, 41, 2.0f), w = RandomVector(dim, 42), b = RandomVector(dim, 43);
  for (int64_t i = 0; i < dim; ++i) x[3 * dim + i] += 50.0f;  // a row with |mean| >> std
  std::vector<float> y(rows * dim), ref(rows * dim), mean(rows), rstd(rows);
  for (const float* bias : {static_cast<const float*>(b.data()), static_cast<const float*>(nullptr)}) {
    LayerNormForward(x.data(), w.data(), bias, rows, dim, 1e-5f, y.data(), mean.data(), rstd.data());
    kernels::LayerNormRef(x.data(), w.data(), bias, rows, dim, 1e-5f, ref.data());
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_NEAR(y[i], ref[i], 1e-6 * std::max(1.0f, std::abs(ref[i]))) << "at " << i;
    }
  }
  // Saved statistics are the row's mean and 1/std.
  double mu = 0, var = 0;
  for (int64_t i = 0; i < dim; ++i) mu += x[3 * dim + i];
  mu /= dim;
  for (int64_t i = 0; i < dim; ++i) var += (x[3 * dim + i] - mu) * (x[3 * dim + i] - mu);
  var /= dim;
  EXPECT_NEAR(mean[3], mu, 1e-5 * std::abs(mu));
  EXPECT_NEAR(rstd[3], 1.0 / std::sqrt(var + 1e-5), 1e-6 / std::sqrt(var));
}

TEST_F(TrainOpsTest, LayerNormGradientsMatchFiniteDifferences) {
  const int64_t rows = 5, dim = 67;
  auto x = RandomVector(rows * dim, 51), w = RandomVector(dim, 52), b = RandomVector(dim, 53);
  for (int64_t i = 0; i < dim; ++i) x[2 * dim + i] = 0.5f * x[2 * dim + i] + 3.0f;  // offset, small spread
  const auto probe = RandomVector(rows * dim, 54);
  std::vector<float> y(rows * dim), mean(rows), rstd(rows);
  auto loss = [&] {
    LayerNormForward(x.data(), w.data(), b.data(), rows, dim, 1e-5f, y.data(), mean.data(), rstd.data());
    return Dot(probe, y);
  };
  loss();
  auto dx = Zeros(rows * dim), dw = Zeros(dim), db = Zeros(dim);
  LayerNormBackward(probe.data(), x.data(), w.data(), mean.data(), rstd.data(), rows, dim, dx.data(), dw.data(),
                    db.data());
  CheckGrad("layernorm dx", x, dx, loss, kSmoothTol);
  CheckGrad("layernorm dw", w, dw, loss, kLinearTol);
  CheckGrad("layernorm db", b, db, loss, kLinearTol);
  auto dx2 = Zeros(rows * dim), dw2 = Zeros(dim), db2 = Zeros(dim);
  for (int rep = 0; rep < 2; ++rep) {
    LayerNormBackward(probe.data(), x.data(), w.data(), mean.data(), rstd.data(), rows, dim, dx2.data(), dw2.data(),
                      db2.data());
  }
  ExpectDoubled("layernorm dx", dx, dx2);
  ExpectDoubled("layernorm dw", dw, dw2);
  ExpectDoubled("layernorm db", db, db2);
}

TEST_F(TrainOpsTest, RmsNormForwardMatchesKernelReference) {
  const int64_t rows = 6, dim = 131;
  auto x = RandomVector(rows * dim, 61, 3.0f), w = RandomVector(dim, 62);
  std::vector<float> y(rows * dim), ref(rows * dim), rstd(rows);
  RmsNormForward(x.data(), w.data(), rows, dim, 1e-6f, y.data(), rstd.data());
  kernels::RmsNormRef(x.data(), w.data(), rows, dim, 1e-6f, ref.data());
  for (size_t i = 0; i < y.size(); ++i) {
    ASSERT_NEAR(y[i], ref[i], 1e-6 * std::max(1.0f, std::abs(ref[i]))) << "at " << i;
  }
  double ss = 0;
  for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(x[i]) * x[i];
  EXPECT_NEAR(rstd[0], 1.0 / std::sqrt(ss / dim + 1e-6), 1e-6 * rstd[0]);
}

TEST_F(TrainOpsTest, RmsNormGradientsMatchFiniteDifferences) {
  const int64_t rows = 5, dim = 67;
  auto x = RandomVector(rows * dim, 71), w = RandomVector(dim, 72);
  const auto probe = RandomVector(rows * dim, 73);
  std::vector<float> y(rows * dim), rstd(rows);
  auto loss = [&] {
    RmsNormForward(x.data(), w.data(), rows, dim, 1e-5f, y.data(), rstd.data());
    return Dot(probe, y);
  };
  loss();
  auto dx = Zeros(rows * dim), dw = Zeros(dim);
  RmsNormBackward(probe.data(), x.data(), w.data(), rstd.data(), rows, dim, dx.data(), dw.data());
  CheckGrad("rmsnorm dx", x, dx, loss, kSmoothTol);
  CheckGrad("rmsnorm dw", w, dw, loss, kLinearTol);
  auto dx2 = Zeros(rows * dim), dw2 = Zeros(dim);
  for (int rep = 0; rep < 2; ++rep) {
    RmsNormBackward(probe.data(), x.data(), w.data(), rstd.data(), rows, dim, dx2.data(), dw2.data());
  }
  ExpectDoubled("rmsnorm dx", dx, dx2);
  ExpectDoubled("rmsnorm dw", dw, dw2);
}

// ---------------------------------------------------------------------------
// Activations

constexpr Activation kAllActivations[] = {Activation::kSilu, Activation::kGelu, Activation::kGeluTanh,
                                          Activation::kQuickGelu, Activation::kRelu};

std::string Name(Activation act) {
  switch (act) {
    case Activation::kSilu:
      return "silu";
    case Activation::kGelu:
      return "gelu";
    case Activation::kGeluTanh:
      return "gelu_tanh";
    case Activation::kQuickGelu:
      return "quick_gelu";
    case Activation::kRelu:
      return "relu";
  }
  return "?";
}

// Random inputs kept at least 0.05 away from 0, so relu's kink lies outside
// every central difference (h = 0.01).
std::vector<float> AwayFromZero(size_t n, uint64_t seed, float scale) {
  auto v = RandomVector(n, seed, scale);
  for (float& x : v) x = x >= 0 ? x + 0.05f : x - 0.05f;
  return v;
}

TEST_F(TrainOpsTest, ActivationForwardEqualsKernelReferenceExactly) {
  std::vector<float> x = RandomVector(3001, 81, 4.0f);
  for (float extreme : {0.0f, -0.0f, 1e-30f, -1e-30f, 30.0f, -30.0f, 100.0f, -100.0f, 1e-4f, -1e-4f}) {
    x.push_back(extreme);
  }
  for (Activation act : kAllActivations) {
    std::vector<float> y(x.size()), ref = x;
    ActivationForward(act, x.data(), static_cast<int64_t>(x.size()), y.data());
    kernels::ActivateRef(act, ref.data(), static_cast<int64_t>(ref.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(y[i], ref[i]) << Name(act) << " at x = " << x[i];
    }
    std::vector<float> in_place = x;  // y may alias x
    ActivationForward(act, in_place.data(), static_cast<int64_t>(x.size()), in_place.data());
    ASSERT_EQ(0, std::memcmp(in_place.data(), ref.data(), sizeof(float) * x.size())) << Name(act) << " in place";
  }
}

TEST_F(TrainOpsTest, ActivationGradientsMatchFiniteDifferences) {
  const int64_t n = 203;
  for (Activation act : kAllActivations) {
    auto x = AwayFromZero(n, 91, 2.0f);
    const auto probe = RandomVector(n, 92);
    std::vector<float> y(n);
    auto loss = [&] {
      ActivationForward(act, x.data(), n, y.data());
      return Dot(probe, y);
    };
    auto dx = Zeros(n);
    ActivationBackward(act, x.data(), probe.data(), n, dx.data());
    CheckGrad("activation " + Name(act) + " dx", x, dx, loss, kSmoothTol);
    auto twice = Zeros(n);
    ActivationBackward(act, x.data(), probe.data(), n, twice.data());
    ActivationBackward(act, x.data(), probe.data(), n, twice.data());
    ExpectDoubled("activation " + Name(act), dx, twice);
  }
}

// Known derivatives at points where they are easy to state.
TEST_F(TrainOpsTest, ActivationDerivativesAtKnownPoints) {
  const std::vector<float> x = {0.0f, 40.0f, -40.0f};
  const std::vector<float> ones(3, 1.0f);
  for (Activation act : kAllActivations) {
    auto dx = Zeros(3);
    ActivationBackward(act, x.data(), ones.data(), 3, dx.data());
    const float at_zero = act == Activation::kRelu ? 0.0f : 0.5f;  // silu/gelus: σ(0) = Φ(0) = 1/2
    EXPECT_NEAR(dx[0], at_zero, 1e-7) << Name(act) << " at 0";
    EXPECT_NEAR(dx[1], 1.0f, 1e-6) << Name(act) << " at +40";
    EXPECT_NEAR(dx[2], 0.0f, 1e-6) << Name(act) << " at -40";
  }
}

TEST_F(TrainOpsTest, GatedForwardEqualsKernelReferenceAndGradientsMatch) {
  const int64_t n = 157;
  for (Activation act : kAllActivations) {
    auto gate = AwayFromZero(n, 101, 2.0f), up = RandomVector(n, 102);
    std::vector<float> out(n), ref = gate;
    GatedForward(act, gate.data(), up.data(), n, out.data());
    kernels::GatedActivateRef(act, ref.data(), up.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[i], ref[i]) << Name(act) << " at " << i;

    const auto probe = RandomVector(n, 103);
    auto loss = [&] {
      GatedForward(act, gate.data(), up.data(), n, out.data());
      return Dot(probe, out);
    };
    auto dgate = Zeros(n), dup = Zeros(n);
    GatedBackward(act, gate.data(), up.data(), probe.data(), n, dgate.data(), dup.data());
    CheckGrad("gated " + Name(act) + " dgate", gate, dgate, loss, kSmoothTol);
    CheckGrad("gated " + Name(act) + " dup", up, dup, loss, kLinearTol);
    auto dgate2 = Zeros(n), dup2 = Zeros(n);
    for (int rep = 0; rep < 2; ++rep) {
      GatedBackward(act, gate.data(), up.data(), probe.data(), n, dgate2.data(), dup2.data());
    }
    ExpectDoubled("gated " + Name(act) + " dgate", dgate, dgate2);
    ExpectDoubled("gated " + Name(act) + " dup", dup, dup2);
    auto dup_only = Zeros(n);
    GatedBackward(act, gate.data(), up.data(), probe.data(), n, nullptr, dup_only.data());
    ASSERT_EQ(0, std::memcmp(dup_only.data(), dup.data(), sizeof(float) * n)) << Name(act) << " dup alone";
  }
}

// ---------------------------------------------------------------------------
// Patch embedding

TEST_F(TrainOpsTest, PatchEmbedForwardMatchesDirectConvolution) {
  // h = 13 is not a multiple of the patch: the last row of pixels is dropped.
  const int64_t h = 13, w = 20, patch = 4, dim = 70;
  const int64_t gh = h / patch, gw = w / patch, np = gh * gw, k = 3 * patch * patch;
  auto pixels = RandomVector(3 * h * w, 111), weight = RandomVector(dim * k, 112), bias = RandomVector(dim, 113);
  std::vector<float> cols(np * k), out(np * dim);
  PatchEmbedForward(pixels.data(), h, w, patch, weight.data(), bias.data(), dim, cols.data(), out.data());
  double worst = 0.0;
  for (int64_t py = 0; py < gh; ++py) {
    for (int64_t px = 0; px < gw; ++px) {
      for (int64_t d = 0; d < dim; ++d) {
        double s = bias[d];  // Conv2d: Σ_c,ky,kx weight[d, c, ky, kx] · pixels[c, py·p + ky, px·p + kx]
        for (int64_t c = 0; c < 3; ++c) {
          for (int64_t ky = 0; ky < patch; ++ky) {
            for (int64_t kx = 0; kx < patch; ++kx) {
              s += static_cast<double>(weight[((d * 3 + c) * patch + ky) * patch + kx]) *
                   pixels[(c * h + py * patch + ky) * w + px * patch + kx];
            }
          }
        }
        worst = std::max(worst, std::abs(out[(py * gw + px) * dim + d] - s));
      }
    }
  }
  EXPECT_LT(worst, 1e-4) << "patch embedding differs from the direct convolution by " << worst;
}

TEST_F(TrainOpsTest, PatchEmbedGradientsMatchFiniteDifferences) {
  const int64_t h = 10, w = 15, patch = 5, dim = 67;
  const int64_t np = (h / patch) * (w / patch), k = 3 * patch * patch;
  auto pixels = RandomVector(3 * h * w, 121), weight = RandomVector(dim * k, 122, 0.2f);
  auto bias = RandomVector(dim, 123);
  const auto probe = RandomVector(np * dim, 124);
  std::vector<float> cols(np * k), out(np * dim);
  auto loss = [&] {
    PatchEmbedForward(pixels.data(), h, w, patch, weight.data(), bias.data(), dim, cols.data(), out.data());
    return Dot(probe, out);
  };
  loss();
  auto dweight = Zeros(dim * k), dbias = Zeros(dim);
  PatchEmbedBackward(probe.data(), cols.data(), np, patch, dim, dweight.data(), dbias.data());
  CheckGrad("patch dweight", weight, dweight, loss, kLinearTol);
  CheckGrad("patch dbias", bias, dbias, loss, kLinearTol);
  auto dweight2 = Zeros(dim * k), dbias2 = Zeros(dim);
  for (int rep = 0; rep < 2; ++rep) {
    PatchEmbedBackward(probe.data(), cols.data(), np, patch, dim, dweight2.data(), dbias2.data());
  }
  ExpectDoubled("patch dweight", dweight, dweight2);
  ExpectDoubled("patch dbias", dbias, dbias2);
}

// ---------------------------------------------------------------------------
// Cross-entropy

TEST_F(TrainOpsTest, CrossEntropyEqualsHandComputedValue) {
  // Row 0: logits (1, 2, 3), target 2: loss = log(e + e² + e³) − 3 = log(1 + e⁻¹ + e⁻²).
  // Row 1: ignored (-100). Row 2: logits (0, 0, 0), target 0: loss = log 3.
  const std::vector<float> logits = {1, 2, 3, 5, -5, 7, 0, 0, 0};
  const std::vector<int32_t> targets = {2, -100, 0};
  std::vector<float> dlogits(9, 0.25f);  // must accumulate onto this
  const double loss = CrossEntropyForwardBackward(logits.data(), targets.data(), 3, 3, 0.5f, dlogits.data());
  const double expected = std::log(1.0 + std::exp(-1.0) + std::exp(-2.0)) + std::log(3.0);
  EXPECT_NEAR(loss, expected, 1e-12);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  const double want[9] = {0.25 + 0.5 * std::exp(1.0) / z,
                          0.25 + 0.5 * std::exp(2.0) / z,
                          0.25 + 0.5 * (std::exp(3.0) / z - 1.0),
                          0.25,
                          0.25,
                          0.25,  // ignored row: untouched
                          0.25 + 0.5 * (1.0 / 3 - 1.0),
                          0.25 + 0.5 / 3,
                          0.25 + 0.5 / 3};
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(dlogits[i], want[i], 1e-7) << "dlogits[" << i << "]";
}

TEST_F(TrainOpsTest, CrossEntropyIsStableForHugeLogitsAndIgnoresNegativeTargets) {
  const int64_t t = 4, v = 5;
  auto logits = RandomVector(t * v, 131);
  std::vector<float> shifted = logits;
  for (float& x : shifted) x += 1000.0f;  // softmax is shift-invariant; exp(1000) overflows
  const std::vector<int32_t> targets = {1, -100, 4, -1};
  const double a = CrossEntropyForwardBackward(logits.data(), targets.data(), t, v, 1.0f, nullptr);
  const double b = CrossEntropyForwardBackward(shifted.data(), targets.data(), t, v, 1.0f, nullptr);
  ASSERT_TRUE(std::isfinite(b));
  // f32 cannot hold logit + 1000 exactly: 1000 has ulp 6e-5.
  EXPECT_NEAR(a, b, 1e-3);
  const std::vector<int32_t> none = {-100, -100, -1, -7};
  auto dlogits = Zeros(t * v);
  EXPECT_EQ(CrossEntropyForwardBackward(logits.data(), none.data(), t, v, 1.0f, dlogits.data()), 0.0);
  for (float g : dlogits) ASSERT_EQ(g, 0.0f);
}

TEST_F(TrainOpsTest, CrossEntropyGradientMatchesFiniteDifferences) {
  const int64_t t = 7, v = 13;
  auto logits = RandomVector(t * v, 141, 2.0f);
  const std::vector<int32_t> targets = {3, -100, 12, 0, 5, -100, 7};
  const float scale = 1.0f / 5;  // 5 counted tokens
  auto loss = [&] { return scale * CrossEntropyForwardBackward(logits.data(), targets.data(), t, v, 1.0f, nullptr); };
  auto dlogits = Zeros(t * v);
  CrossEntropyForwardBackward(logits.data(), targets.data(), t, v, scale, dlogits.data());
  CheckGrad("cross-entropy dlogits", logits, dlogits, loss, kLossTol);
  for (int64_t i = 0; i < v; ++i) {
    EXPECT_EQ(dlogits[1 * v + i], 0.0f) << "ignored row 1";
    EXPECT_EQ(dlogits[5 * v + i], 0.0f) << "ignored row 5";
  }
  auto twice = Zeros(t * v);
  CrossEntropyForwardBackward(logits.data(), targets.data(), t, v, scale, twice.data());
  CrossEntropyForwardBackward(logits.data(), targets.data(), t, v, scale, twice.data());
  ExpectDoubled("cross-entropy dlogits", dlogits, twice);
}

// ---------------------------------------------------------------------------
// KL divergence

TEST_F(TrainOpsTest, KlDivIsZeroForIdenticalLogitsAndMatchesTheDefinition) {
  const int64_t t = 6, v = 9;
  auto s = RandomVector(t * v, 151, 2.0f);
  auto dstudent = Zeros(t * v);
  EXPECT_EQ(KlDivForwardBackward(s.data(), s.data(), nullptr, t, v, 2.0f, 1.0f, dstudent.data()), 0.0);
  for (float g : dstudent) EXPECT_NEAR(g, 0.0f, 1e-8);

  // Definition on one row, temperature 2: Σ p log(p / q).
  auto teacher = RandomVector(t * v, 152, 2.0f);
  const uint8_t mask[6] = {1, 0, 0, 0, 0, 0};
  const double got = KlDivForwardBackward(s.data(), teacher.data(), mask, t, v, 2.0f, 1.0f, nullptr);
  double zs = 0, zt = 0;
  for (int64_t i = 0; i < v; ++i) zs += std::exp(s[i] / 2.0), zt += std::exp(teacher[i] / 2.0);
  double want = 0;
  for (int64_t i = 0; i < v; ++i) {
    const double p = std::exp(teacher[i] / 2.0) / zt, q = std::exp(s[i] / 2.0) / zs;
    want += p * std::log(p / q);
  }
  EXPECT_GT(want, 0.0);
  EXPECT_NEAR(got, want, 1e-9 * std::max(1.0, want));
}

TEST_F(TrainOpsTest, KlDivGradientMatchesFiniteDifferencesWithTemperatureAndMask) {
  const int64_t t = 5, v = 11;
  auto student = RandomVector(t * v, 161, 2.0f), teacher = RandomVector(t * v, 162, 2.0f);
  const uint8_t mask[5] = {1, 0, 1, 1, 0};
  for (const float temperature : {1.0f, 2.5f}) {
    const float scale = 0.7f;
    auto loss = [&] {
      return scale * KlDivForwardBackward(student.data(), teacher.data(), mask, t, v, temperature, 1.0f, nullptr);
    };
    auto ds = Zeros(t * v);
    KlDivForwardBackward(student.data(), teacher.data(), mask, t, v, temperature, scale, ds.data());
    CheckGrad("kl dstudent (T " + std::to_string(temperature) + ")", student, ds, loss, kLossTol);
    for (int64_t i = 0; i < v; ++i) {
      EXPECT_EQ(ds[1 * v + i], 0.0f) << "masked row 1";
      EXPECT_EQ(ds[4 * v + i], 0.0f) << "masked row 4";
    }
    auto twice = Zeros(t * v);
    for (int rep = 0; rep < 2; ++rep) {
      KlDivForwardBackward(student.data(), teacher.data(), mask, t, v, temperature, scale, twice.data());
    }
    ExpectDoubled("kl dstudent", ds, twice);
  }
}

// ---------------------------------------------------------------------------
// Squared error

TEST_F(TrainOpsTest, MseValueAndGradient) {
  const std::vector<float> a0 = {1.0f, -2.0f, 0.5f}, b = {0.0f, 1.0f, 0.5f};
  auto da = Zeros(3);
  EXPECT_DOUBLE_EQ(MseForwardBackward(a0.data(), b.data(), 3, 0.5f, da.data()), 1.0 + 9.0);
  EXPECT_FLOAT_EQ(da[0], 1.0f);  // 0.5 · 2 · (1 − 0)
  EXPECT_FLOAT_EQ(da[1], -3.0f);
  EXPECT_FLOAT_EQ(da[2], 0.0f);

  const int64_t n = 301;
  auto a = RandomVector(n, 171), target = RandomVector(n, 172);
  auto loss = [&] { return 0.25 * MseForwardBackward(a.data(), target.data(), n, 1.0f, nullptr); };
  auto grad = Zeros(n);
  MseForwardBackward(a.data(), target.data(), n, 0.25f, grad.data());
  CheckGrad("mse da", a, grad, loss, kLinearTol);
  auto twice = Zeros(n);
  MseForwardBackward(a.data(), target.data(), n, 0.25f, twice.data());
  MseForwardBackward(a.data(), target.data(), n, 0.25f, twice.data());
  ExpectDoubled("mse da", grad, twice);
}

// ---------------------------------------------------------------------------
// Thread counts 1 and 2 give bit-identical outputs, gradients and losses.

struct AllOpsResult {
  std::vector<std::vector<float>> tensors;
  std::vector<double> losses;
};

// Runs every op forward and backward once at shapes large enough to be split.
AllOpsResult RunAllOps() {
  AllOpsResult res;
  auto keep = [&](std::vector<float> v) { res.tensors.push_back(std::move(v)); };
  {  // linear: m = 33, k = 130, n = 200
    const int64_t m = 33, k = 130, n = 200;
    auto x = RandomVector(m * k, 201), w = RandomVector(n * k, 202), b = RandomVector(n, 203);
    auto dy = RandomVector(m * n, 204);
    std::vector<float> y(m * n);
    LinearForward(x.data(), w.data(), b.data(), m, k, n, y.data());
    auto dx = Zeros(m * k), dw = Zeros(n * k), db = Zeros(n);
    LinearBackward(dy.data(), x.data(), w.data(), m, k, n, dx.data(), dw.data(), db.data());
    keep(y), keep(dx), keep(dw), keep(db);
  }
  {  // embedding: t = 50 (repeats), dim = 300
    const int64_t t = 50, dim = 300, vocab = 17;
    std::vector<int32_t> ids(t);
    for (int64_t i = 0; i < t; ++i) ids[i] = static_cast<int32_t>((i * 7) % vocab);
    auto table = RandomVector(vocab * dim, 211), dout = RandomVector(t * dim, 212);
    std::vector<float> out(t * dim);
    EmbeddingForward(ids.data(), t, table.data(), dim, out.data());
    auto dtable = Zeros(vocab * dim);
    EmbeddingBackward(ids.data(), t, dout.data(), dim, dtable.data());
    keep(out), keep(dtable);
  }
  {  // norms: rows = 37, dim = 150
    const int64_t rows = 37, dim = 150;
    auto x = RandomVector(rows * dim, 221), w = RandomVector(dim, 222), b = RandomVector(dim, 223);
    auto dy = RandomVector(rows * dim, 224);
    std::vector<float> y(rows * dim), mean(rows), rstd(rows);
    LayerNormForward(x.data(), w.data(), b.data(), rows, dim, 1e-5f, y.data(), mean.data(), rstd.data());
    auto dx = Zeros(rows * dim), dw = Zeros(dim), db = Zeros(dim);
    LayerNormBackward(dy.data(), x.data(), w.data(), mean.data(), rstd.data(), rows, dim, dx.data(), dw.data(),
                      db.data());
    keep(y), keep(mean), keep(rstd), keep(dx), keep(dw), keep(db);
    std::vector<float> y2(rows * dim), rstd2(rows);
    RmsNormForward(x.data(), w.data(), rows, dim, 1e-5f, y2.data(), rstd2.data());
    auto dx2 = Zeros(rows * dim), dw2 = Zeros(dim);
    RmsNormBackward(dy.data(), x.data(), w.data(), rstd2.data(), rows, dim, dx2.data(), dw2.data());
    keep(y2), keep(rstd2), keep(dx2), keep(dw2);
  }
  {  // activations and gating: n = 5000 (several 1024-element units)
    const int64_t n = 5000;
    auto x = RandomVector(n, 231, 2.0f), up = RandomVector(n, 232), dy = RandomVector(n, 233);
    for (Activation act : kAllActivations) {
      std::vector<float> y(n), g(n);
      ActivationForward(act, x.data(), n, y.data());
      auto dx = Zeros(n);
      ActivationBackward(act, x.data(), dy.data(), n, dx.data());
      GatedForward(act, x.data(), up.data(), n, g.data());
      auto dg = Zeros(n), du = Zeros(n);
      GatedBackward(act, x.data(), up.data(), dy.data(), n, dg.data(), du.data());
      keep(y), keep(dx), keep(g), keep(dg), keep(du);
    }
  }
  {  // patch embedding: 32×32, patch 4 (64 patches), dim 70
    const int64_t h = 32, w = 32, patch = 4, dim = 70, np = 64, k = 48;
    auto pixels = RandomVector(3 * h * w, 241), weight = RandomVector(dim * k, 242), bias = RandomVector(dim, 243);
    auto dout = RandomVector(np * dim, 244);
    std::vector<float> cols(np * k), out(np * dim);
    PatchEmbedForward(pixels.data(), h, w, patch, weight.data(), bias.data(), dim, cols.data(), out.data());
    auto dweight = Zeros(dim * k), dbias = Zeros(dim);
    PatchEmbedBackward(dout.data(), cols.data(), np, patch, dim, dweight.data(), dbias.data());
    keep(cols), keep(out), keep(dweight), keep(dbias);
  }
  {  // losses: t = 100 rows (more rows than loss blocks), v = 50
    const int64_t t = 100, v = 50;
    auto s = RandomVector(t * v, 251, 2.0f), teacher = RandomVector(t * v, 252, 2.0f);
    std::vector<int32_t> targets(t);
    std::vector<uint8_t> mask(t);
    for (int64_t i = 0; i < t; ++i) {
      targets[i] = i % 9 == 0 ? -100 : static_cast<int32_t>((i * 13) % v);
      mask[i] = i % 5 != 0;
    }
    auto dce = Zeros(t * v), dkl = Zeros(t * v), dmse = Zeros(t * v);
    res.losses.push_back(CrossEntropyForwardBackward(s.data(), targets.data(), t, v, 0.01f, dce.data()));
    res.losses.push_back(
        KlDivForwardBackward(s.data(), teacher.data(), mask.data(), t, v, 2.0f, 0.01f, dkl.data()));
    res.losses.push_back(MseForwardBackward(s.data(), teacher.data(), t * v, 0.5f, dmse.data()));
    keep(dce), keep(dkl), keep(dmse);
  }
  return res;
}

TEST_F(TrainOpsTest, OneAndTwoThreadsGiveIdenticalResults) {
  SetNumThreads(1);
  const AllOpsResult one = RunAllOps();
  SetNumThreads(2);
  const AllOpsResult two = RunAllOps();
  ASSERT_EQ(one.tensors.size(), two.tensors.size());
  for (size_t i = 0; i < one.tensors.size(); ++i) {
    ExpectBitIdentical("tensor #" + std::to_string(i), one.tensors[i], two.tensors[i]);
  }
  ASSERT_EQ(one.losses.size(), two.losses.size());
  for (size_t i = 0; i < one.losses.size(); ++i) {
    EXPECT_EQ(one.losses[i], two.losses[i]) << "loss #" << i << " differs between 1 and 2 threads";
  }
}

// ---------------------------------------------------------------------------
// The check itself must be able to fail: a gradient that is off by a few
// percent (here RMSNorm's dx without its rstd³ term) is caught.
TEST_F(TrainOpsTest, GradientCheckCatchesAWrongGradient) {
  const int64_t rows = 3, dim = 9;
  auto x = RandomVector(rows * dim, 181), w = RandomVector(dim, 182);
  const auto probe = RandomVector(rows * dim, 183);
  std::vector<float> y(rows * dim), rstd(rows);
  auto loss = [&] {
    RmsNormForward(x.data(), w.data(), rows, dim, 1e-5f, y.data(), rstd.data());
    return Dot(probe, y);
  };
  loss();
  auto wrong = Zeros(rows * dim);  // dx = rstd · dy · w only
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < dim; ++i) wrong[r * dim + i] = rstd[r] * probe[r * dim + i] * w[i];
  }
  EXPECT_NONFATAL_FAILURE(CheckGrad("wrong rmsnorm dx", x, wrong, loss, kSmoothTol), "gradient mismatch");
}

}  // namespace
}  // namespace bitlens::train
