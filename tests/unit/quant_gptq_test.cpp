// LayerStats accumulation against a brute-force Σ xᵀx; GPTQ against RTN on
// correlated calibration activations (output error from XᵀX, checked against
// a direct computation).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "quant/awq.h"
#include "quant/gptq.h"
#include "quant/grid.h"
#include "quant/layer_stats.h"
#include "quant/quantize_layer.h"
#include "quant/rtn.h"
#include "quant/ternary.h"
#include "quant_algos_testdata.h"

namespace bitlens::quant {
namespace {

std::vector<float> RandomRows(int64_t m, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m * k));
  for (float& v : x) v = d(rng);
  return x;
}

TEST(QuantLayerStats, AccumulateMatchesBruteForce) {
  const int64_t k = 37, m1 = 19, m2 = 50;
  const std::vector<float> a = RandomRows(m1, k, 1), b = RandomRows(m2, k, 2);
  LayerStats s(k);
  ASSERT_TRUE(s.Accumulate(a.data(), m1).ok());
  ASSERT_TRUE(s.Accumulate(b.data(), m2).ok());
  EXPECT_EQ(s.rows_seen, m1 + m2);
  double worst = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = i; j < k; ++j) {
      double ref = 0.0;
      for (int64_t t = 0; t < m1; ++t) ref += double(a[t * k + i]) * a[t * k + j];
      for (int64_t t = 0; t < m2; ++t) ref += double(b[t * k + i]) * b[t * k + j];
      worst = std::max(worst, std::fabs(ref - s.Xtx(i, j)));
      EXPECT_EQ(s.Xtx(i, j), s.Xtx(j, i));
    }
  }
  EXPECT_LT(worst, 1e-3) << "worst |Σxᵀx - brute force| = " << worst;
  const std::vector<double> mean = s.AbsMean();
  for (int64_t j = 0; j < k; ++j) {
    double sum = 0.0;
    float mx = 0.0f;
    for (int64_t t = 0; t < m1; ++t) sum += std::fabs(a[t * k + j]), mx = std::max(mx, std::fabs(a[t * k + j]));
    for (int64_t t = 0; t < m2; ++t) sum += std::fabs(b[t * k + j]), mx = std::max(mx, std::fabs(b[t * k + j]));
    EXPECT_NEAR(mean[j], sum / (m1 + m2), 1e-9) << "channel " << j;
    EXPECT_EQ(s.abs_max[j], mx) << "channel " << j;
  }
  s.Symmetrize();
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) ASSERT_EQ(s.xtx[i * k + j], s.xtx[j * k + i]);
}

TEST(QuantLayerStats, MergeEqualsOneAccumulation) {
  const int64_t k = 16;
  const std::vector<float> a = RandomRows(10, k, 3), b = RandomRows(7, k, 4);
  LayerStats one(k), left(k), right(k);
  ASSERT_TRUE(one.Accumulate(a.data(), 10).ok());
  ASSERT_TRUE(one.Accumulate(b.data(), 7).ok());
  ASSERT_TRUE(left.Accumulate(a.data(), 10).ok());
  ASSERT_TRUE(right.Accumulate(b.data(), 7).ok());
  ASSERT_TRUE(left.Merge(right).ok());
  EXPECT_EQ(left.rows_seen, 17);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = i; j < k; ++j) EXPECT_NEAR(left.Xtx(i, j), one.Xtx(i, j), 1e-4);
  LayerStats other(k + 1);
  const Status s = left.Merge(other);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("k=17"), std::string::npos) << s.message();
}

TEST(QuantLayerStats, RejectsNonFiniteActivations) {
  const int64_t k = 8;
  std::vector<float> x = RandomRows(4, k, 5);
  x[2 * k + 3] = std::numeric_limits<float>::quiet_NaN();
  LayerStats s(k);
  const Status st = s.Accumulate(x.data(), 4);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("row 2 channel 3"), std::string::npos) << st.message();
  EXPECT_EQ(s.rows_seen, 0);
  LayerStats empty;
  EXPECT_FALSE(empty.Accumulate(x.data(), 1).ok());
}

using testdata::BruteForceOutputError;
using testdata::CorrelatedActivations;
using testdata::NormalWeights;
using testdata::StatsOf;

const FormatInfo& Format(const char* name) {
  auto f = FindFormat(name);
  EXPECT_TRUE(f.ok()) << name;
  return **f;
}

struct Quantized {
  std::vector<uint8_t> packed;
  std::vector<float> w_hat;
  LinearQuantResult result;
};

Quantized QuantizeWith(QuantMethod method, const FormatInfo& f, const std::vector<float>& w, int64_t n,
              int64_t k, const LayerStats* stats, const QuantizeOptions& o) {
  Quantized q;
  q.packed.assign(static_cast<size_t>(n) * RowBytes(f, k), 0);
  const Status s = QuantizeLinear(method, f, w.data(), n, k, stats, o, q.packed, &q.result);
  EXPECT_TRUE(s.ok()) << f.name << ": " << s.message();
  q.w_hat.assign(static_cast<size_t>(n * k), 0.0f);
  EXPECT_TRUE(DequantizeRowsRef(f, q.packed, n, k, q.w_hat.data()).ok());
  return q;
}

QuantizeOptions Grid(GridMethod g) {
  QuantizeOptions o;
  o.grid = g;
  o.error_rows = 0;
  return o;
}

TEST(QuantGptq, InverseHessianFactorInvertsTheDampedHessian) {
  const int64_t k = 24, m = 200;
  const std::vector<float> x = CorrelatedActivations(m, k, 2, 8.0f, 11);
  LayerStats s = StatsOf(x, k);
  // A dead input: no signal at all.
  for (int64_t j = 0; j < k; ++j) s.xtx[std::min(j, 5L) * k + std::max(j, 5L)] = 0.0f;
  std::vector<int64_t> perm = ActOrderPermutation(s);
  ASSERT_EQ(perm.size(), size_t(k));
  for (int64_t i = 1; i < k; ++i) EXPECT_GE(s.Xtx(perm[i - 1], perm[i - 1]), s.Xtx(perm[i], perm[i]));
  for (const bool permuted : {false, true}) {
    std::vector<float> u;
    const std::span<const int64_t> p = permuted ? std::span<const int64_t>(perm) : std::span<const int64_t>();
    ASSERT_TRUE(GptqInverseHessianFactor(s, 0.01f, p, &u).ok());
    // H' = 2/N P H Pᵀ, dead diagonal 1, + λI, in double.
    std::vector<double> h(k * k);
    double tr = 0.0;
    for (int64_t i = 0; i < k; ++i) {
      for (int64_t j = 0; j < k; ++j) {
        const int64_t a = permuted ? perm[i] : i, b = permuted ? perm[j] : j;
        h[i * k + j] = 2.0 / m * s.Xtx(a, b);
      }
      if (h[i * k + i] == 0.0) h[i * k + i] = 1.0;
      tr += h[i * k + i];
    }
    for (int64_t i = 0; i < k; ++i) h[i * k + i] += 0.01 * tr / k;
    // (UᵀU) H' must be the identity.
    double worst = 0.0;
    for (int64_t i = 0; i < k; ++i) {
      for (int64_t j = 0; j < k; ++j) {
        double v = 0.0;
        for (int64_t a = 0; a < k; ++a) {
          double uta = 0.0;  // (UᵀU)[i, a] with U upper
          for (int64_t c = 0; c <= std::min(i, a); ++c) uta += double(u[c * k + i]) * u[c * k + a];
          v += uta * h[a * k + j];
        }
        worst = std::max(worst, std::fabs(v - (i == j ? 1.0 : 0.0)));
      }
    }
    EXPECT_LT(worst, 2e-3) << "permuted=" << permuted << " worst |UᵀU·H − I| = " << worst;
  }
}

TEST(QuantGptq, OutputErrorFromStatsEqualsBruteForce) {
  const int64_t n = 6, k = 64, m = 40;
  const std::vector<float> x = CorrelatedActivations(m, k, 2, 6.0f, 12);
  const std::vector<float> w = NormalWeights(n * k, 0.02f, 13);
  const LayerStats s = StatsOf(x, k);
  const Quantized q = QuantizeWith(QuantMethod::kRtn, Format("w2g32"), w, n, k, &s, Grid(GridMethod::kMinMax));
  const double brute = BruteForceOutputError(w, q.w_hat, x, n, k);
  std::printf("  tiny w2g32 rtn: output error from XᵀX %.6f, brute force %.6f\n",
              q.result.rel_output_error, brute);
  EXPECT_EQ(q.result.error_rows_used, n);
  EXPECT_NEAR(q.result.rel_output_error, brute, 1e-4 * brute);
  double mse = 0.0;
  for (size_t i = 0; i < w.size(); ++i) mse += (double(w[i]) - q.w_hat[i]) * (double(w[i]) - q.w_hat[i]);
  EXPECT_NEAR(q.result.weight_mse, mse / w.size(), 1e-12);
  // Sampled rows: rows 0, 2, 4 of 6.
  int64_t used = 0;
  auto sampled = RelativeOutputError(w.data(), q.w_hat.data(), n, k, s, 3, &used);
  ASSERT_TRUE(sampled.ok());
  EXPECT_EQ(used, 3);
  std::vector<float> ws, whs;
  for (int64_t r : {0, 2, 4}) {
    ws.insert(ws.end(), w.begin() + r * k, w.begin() + (r + 1) * k);
    whs.insert(whs.end(), q.w_hat.begin() + r * k, q.w_hat.begin() + (r + 1) * k);
  }
  const double brute3 = BruteForceOutputError(ws, whs, x, 3, k);
  EXPECT_NEAR(*sampled, brute3, 1e-4 * brute3);
}

// Every grid format: GPTQ's layer output error is strictly below RTN min-max
// and RTN with the MSE clipping search, on the same calibration data.
TEST(QuantGptq, OutputErrorBelowRtnOnCorrelatedActivations) {
  const int64_t n = 64, k = 512, m = 2048;
  const std::vector<float> x = CorrelatedActivations(m, k, 4, 8.0f, 21);
  const std::vector<float> w = NormalWeights(n * k, 0.02f, 22);
  const LayerStats s = StatsOf(x, k);
  for (const char* required : {"w2g64", "w2g32", "w2sg32", "w4g32", "w2g32dq", "w2g64dq", "t1"}) {
    EXPECT_TRUE(FindFormat(required).ok()) << required;
  }
  std::printf("  %-9s %12s %12s %12s %12s %12s\n", "format", "rtn minmax", "rtn mseclip",
              "gptq", "gptq natural", "gptq nat+st");
  for (const FormatInfo& f : AllFormats()) {
    if (!HasGrid(f)) continue;
    const Quantized mm = QuantizeWith(QuantMethod::kRtn, f, w, n, k, &s, Grid(GridMethod::kMinMax));
    const Quantized clip = QuantizeWith(QuantMethod::kRtn, f, w, n, k, &s, Grid(GridMethod::kMseClip));
    // Default: act_order (static grids).
    const Quantized gptq = QuantizeWith(QuantMethod::kGptq, f, w, n, k, &s, Grid(GridMethod::kMseClip));
    QuantizeOptions natural = Grid(GridMethod::kMseClip);
    natural.gptq.act_order = false;  // grids chosen when each group starts
    const Quantized gnat = QuantizeWith(QuantMethod::kGptq, f, w, n, k, &s, natural);
    QuantizeOptions st = natural;
    st.gptq.static_groups = true;
    const Quantized gst = QuantizeWith(QuantMethod::kGptq, f, w, n, k, &s, st);
    std::printf("  %-9s %12.5f %12.5f %12.5f %12.5f %12.5f\n", f.name, mm.result.rel_output_error,
                clip.result.rel_output_error, gptq.result.rel_output_error,
                gnat.result.rel_output_error, gst.result.rel_output_error);
    EXPECT_LT(gptq.result.rel_output_error, mm.result.rel_output_error) << f.name;
    EXPECT_LT(gptq.result.rel_output_error, clip.result.rel_output_error) << f.name;
    EXPECT_LT(gnat.result.rel_output_error, clip.result.rel_output_error) << f.name << " natural order";
    EXPECT_LT(gst.result.rel_output_error, clip.result.rel_output_error) << f.name << " static";
  }
}

// Grids chosen under Σ H_ii (w − ŵ)²: never worse than the base grids in that
// weighted error (every format), and GPTQ with them is clearly better when a
// few input channels carry most of the signal.
TEST(QuantGptq, HessianWeightedGridsHelpWithOutlierChannels) {
  const int64_t n = 64, k = 512, m = 2048;
  const std::vector<float> x = CorrelatedActivations(m, k, 4, 20.0f, 23);
  const std::vector<float> w = NormalWeights(n * k, 0.02f, 24);
  const LayerStats s = StatsOf(x, k);
  std::vector<float> d(k);
  for (int64_t i = 0; i < k; ++i) d[i] = s.Xtx(i, i);
  for (const FormatInfo& f : AllFormats()) {
    if (!HasGrid(f)) continue;
    const int64_t groups = NumGroups(f, k), gs = f.group_size > 0 ? f.group_size : k;
    std::vector<GroupGrid> base(groups), weighted(groups);
    for (int64_t r = 0; r < n; ++r) {
      const float* wr = w.data() + r * k;
      ChooseGrids(f, GridMethod::kMseClip, HqqOptions{}, wr, k, base.data());
      DiagWeightedRowGrids(f, wr, d.data(), k, base.data(), weighted.data());
      double eb = 0.0, ew = 0.0;
      for (int64_t i = 0; i < k; ++i) {
        const GroupGrid& b = base[i / gs];
        const GroupGrid& g = weighted[i / gs];
        const double rb = wr[i] - GridValue(b, NearestCode(b, QMax(f), wr[i]));
        const double rw = wr[i] - GridValue(g, NearestCode(g, QMax(f), wr[i]));
        eb += d[i] * rb * rb;
        ew += d[i] * rw * rw;
      }
      ASSERT_LE(ew, eb * (1 + 1e-9)) << f.name << " row " << r;
    }
  }
  std::printf("  %-9s %14s %14s\n", "format", "gptq unweighted", "gptq weighted");
  for (const char* name : {"w2g64", "w2g32", "w2sg32", "w2g32dq", "w4g32"}) {
    const FormatInfo& f = Format(name);
    QuantizeOptions plain = Grid(GridMethod::kMseClip);
    plain.gptq.weighted_grids = false;
    const Quantized a = QuantizeWith(QuantMethod::kGptq, f, w, n, k, &s, plain);
    const Quantized b = QuantizeWith(QuantMethod::kGptq, f, w, n, k, &s, Grid(GridMethod::kMseClip));
    std::printf("  %-9s %14.5f %14.5f\n", name, a.result.rel_output_error, b.result.rel_output_error);
    EXPECT_LT(b.result.rel_output_error, 0.85 * a.result.rel_output_error) << name;
  }
}

// The packed rows decode to the grids and codes GPTQ chose: every dequantized
// weight is a grid point of its group; also for a ragged k (partial last group).
TEST(QuantGptq, PackedRowsRoundTripThroughDequantize) {
  for (const int64_t k : {256, 250}) {
    const int64_t n = 8, m = 512;
    const std::vector<float> x = CorrelatedActivations(m, k, 2, 8.0f, 31);
    const std::vector<float> w = NormalWeights(n * k, 0.02f, 32);
    const LayerStats s = StatsOf(x, k);
    for (const FormatInfo& f : AllFormats()) {
      if (!HasGrid(f)) continue;
      const Quantized q = QuantizeWith(QuantMethod::kGptq, f, w, n, k, &s, Grid(GridMethod::kMseClip));
      const Quantized rtn = QuantizeWith(QuantMethod::kRtn, f, w, n, k, &s, Grid(GridMethod::kMseClip));
      EXPECT_LT(q.result.rel_output_error, rtn.result.rel_output_error) << f.name << " k=" << k;
      const size_t rb = RowBytes(f, k);
      std::vector<GroupGrid> grids(NumGroups(f, k));
      std::vector<uint8_t> codes(k);
      const int64_t gs = f.group_size > 0 ? f.group_size : k;
      double worst = 0.0;
      for (int64_t r = 0; r < n; ++r) {
        DecodeRow(f, q.packed.data() + r * rb, k, grids.data(), codes.data());
        for (int64_t i = 0; i < k; ++i) {
          const GroupGrid& g = grids[i / gs];
          ASSERT_LE(codes[i], QMax(f)) << f.name;
          const double d = std::fabs(double(GridValue(g, codes[i])) - q.w_hat[r * k + i]);
          worst = std::max(worst, d / (std::fabs(g.scale) * QMax(f) + 1e-30));
        }
      }
      EXPECT_LT(worst, 1e-5) << f.name << " k=" << k << ": dequantized weight off its grid point by "
                             << worst << " of the grid range";
    }
  }
}

// Degenerate shapes: a single input, a single row, k below one group or one
// super-block, activations that never reach some inputs (dead columns).
TEST(QuantGptq, TinyRaggedAndDeadInputs) {
  for (const int64_t k : {1, 7, 33, 300}) {
    for (const int64_t n : {1, 3}) {
      std::vector<float> x = CorrelatedActivations(64, k, 0, 1.0f, 91);
      for (int64_t t = 0; t < 64; ++t) x[t * k + k / 2] = 0.0f;  // input k/2 is dead
      const std::vector<float> w = NormalWeights(n * k, 0.02f, 92);
      const LayerStats s = StatsOf(x, k);
      for (const FormatInfo& f : AllFormats()) {
        if (!HasGrid(f)) continue;
        for (const QuantMethod method : {QuantMethod::kRtn, QuantMethod::kHqq, QuantMethod::kGptq}) {
          for (const bool act_order : {true, false}) {
            QuantizeOptions o = Grid(GridMethod::kMseRefine);
            o.gptq.act_order = act_order;
            const Quantized q = QuantizeWith(method, f, w, n, k, &s, o);
            EXPECT_TRUE(std::isfinite(q.result.rel_output_error) && q.result.rel_output_error >= 0.0)
                << f.name << " " << QuantMethodName(method) << " n=" << n << " k=" << k << ": "
                << q.result.rel_output_error;
            // The dead input is still quantized by rounding, not zeroed.
            const int64_t gs = f.group_size > 0 ? f.group_size : k;
            if (gs > 1 && k > 1 && std::fabs(w[k / 2]) > 0.01f) {
              EXPECT_NE(q.w_hat[k / 2], 0.0f) << f.name << " k=" << k;
            }
          }
        }
      }
    }
  }
}

TEST(QuantGptq, ClearErrors) {
  const int64_t n = 4, k = 64;
  const std::vector<float> w = NormalWeights(n * k, 0.02f, 41);
  const std::vector<float> x = CorrelatedActivations(16, k, 0, 1.0f, 42);  // 16 rows < k: rank 16
  const LayerStats s = StatsOf(x, k);
  const FormatInfo& f = Format("w2g32");
  std::vector<uint8_t> out(n * RowBytes(f, k));
  QuantizeOptions o;
  auto expect_error = [&](Status st, const std::string& needle) {
    EXPECT_FALSE(st.ok()) << needle;
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
  };
  expect_error(QuantizeLinear(QuantMethod::kRtn, Format("bf16"), w.data(), n, k, nullptr, o,
                              std::span<uint8_t>(), nullptr),
               "passthrough");
  expect_error(QuantizeLinear(QuantMethod::kRtn, f, w.data(), n, k, nullptr, o,
                              std::span<uint8_t>(out.data(), out.size() - 1), nullptr),
               "needs " + std::to_string(out.size()));
  expect_error(QuantizeLinear(QuantMethod::kGptq, f, w.data(), n, k, nullptr, o, out, nullptr),
               "needs calibration");
  const LayerStats wrong(k * 2);
  expect_error(QuantizeLinear(QuantMethod::kRtn, f, w.data(), n, k, &wrong, o, out, nullptr), "k=128");
  o.gptq.percdamp = 0.0f;
  expect_error(QuantizeLinear(QuantMethod::kGptq, f, w.data(), n, k, &s, o, out, nullptr),
               "not positive definite");
  o.gptq.percdamp = 0.01f;
  EXPECT_TRUE(QuantizeLinear(QuantMethod::kGptq, f, w.data(), n, k, &s, o, out, nullptr).ok());
  std::vector<float> bad = w;
  bad[5] = std::numeric_limits<float>::infinity();
  expect_error(QuantizeLinear(QuantMethod::kRtn, f, bad.data(), n, k, nullptr, o, out, nullptr),
               "[0, 5] is not finite");
  EXPECT_FALSE(ParseQuantMethod("awq").ok());
  EXPECT_EQ(*ParseQuantMethod("gptq"), QuantMethod::kGptq);
}

// The phi-4-mini MLP shapes: gate/up [8192, 3072] and down [3072, 8192]. Prints
// the times; runs only with BITLENS_SLOW_TESTS=1 (a few minutes on 2 cores).
TEST(QuantGptqTiming, Phi4MiniMlpShapes) {
  if (std::getenv("BITLENS_SLOW_TESTS") == nullptr) GTEST_SKIP() << "set BITLENS_SLOW_TESTS=1";
  struct Shape { int64_t n, k; };
  for (const Shape shape : {Shape{8192, 3072}, Shape{3072, 8192}}) {
    const int64_t n = shape.n, k = shape.k, m = 2048;
    const std::vector<float> x = testdata::LowRankActivations(m, k, 64, 8, 8.0f, 51);
    const std::vector<float> w = NormalWeights(n * k, 0.02f, 52);
    const auto t1 = std::chrono::steady_clock::now();
    LayerStats s = StatsOf(x, k);
    const auto t2 = std::chrono::steady_clock::now();
    std::printf("  stats: %lld rows x k=%lld accumulated in %.2f s\n", (long long)m, (long long)k,
                std::chrono::duration<double>(t2 - t1).count());
    std::vector<float> u;
    ASSERT_TRUE(GptqInverseHessianFactor(s, 0.01f, {}, &u).ok());
    std::printf("  inverse Hessian factor k=%lld: %.2f s\n", (long long)k,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t2).count());
    for (const char* name : {"w2g64"}) {
      const FormatInfo& f = Format(name);
      for (const int variant : {0, 1, 2, 3}) {  // rtn, hqq, gptq, gptq without weighted grids
        const QuantMethod method =
            variant == 0 ? QuantMethod::kRtn : variant == 1 ? QuantMethod::kHqq : QuantMethod::kGptq;
        std::vector<uint8_t> out(n * RowBytes(f, k));
        QuantizeOptions o;
        o.gptq.weighted_grids = variant != 3;
        LinearQuantResult r;
        const auto a = std::chrono::steady_clock::now();
        ASSERT_TRUE(QuantizeLinear(method, f, w.data(), n, k, &s, o, out, &r).ok());
        const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
        std::printf("  %s%s %s [%lld, %lld]: quantize %.2f s, with error metric %.2f s, rel output error %.5f (%lld rows)\n",
                    QuantMethodName(method), variant == 3 ? " (unweighted grids)" : "", name, (long long)n, (long long)k, r.seconds, total,
                    r.rel_output_error, (long long)r.error_rows_used);
      }
      const AwqWeight mats[] = {{w.data(), n}};
      AwqResult ar;
      const auto a = std::chrono::steady_clock::now();
      ASSERT_TRUE(AwqSearchScales(f, mats, k, s, AwqOptions{}, &ar).ok());
      std::printf("  awq search %s [%lld, %lld], 20 alphas on 128 rows: %.2f s, alpha %.2f\n", name,
                  (long long)n, (long long)k,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count(), ar.alpha);
    }
  }
}

}  // namespace
}  // namespace bitlens::quant
