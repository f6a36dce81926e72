// Ternary and least-squares grids: the optimal ternary scale equals an
// exhaustive search, the refined grids are never worse than the clipping
// search, and GPTQ with the ternary grid beats ternary RTN on the output error.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "quant/quantize_layer.h"
#include "quant/rtn.h"
#include "quant/ternary.h"
#include "quant_algos_testdata.h"

namespace bitlens::quant {
namespace {

using testdata::CorrelatedActivations;
using testdata::NormalWeights;
using testdata::StatsOf;

// min over all 3^len ternary vectors t of min_s Σ (w − s·t)², s = Σ w·t / Σ t².
double ExhaustiveTernaryError(const std::vector<float>& w) {
  const int len = static_cast<int>(w.size());
  int total = 1;
  for (int i = 0; i < len; ++i) total *= 3;
  double best = INFINITY;
  for (int code = 0; code < total; ++code) {
    std::vector<int> t(len);
    for (int i = 0, c = code; i < len; ++i, c /= 3) t[i] = c % 3 - 1;
    double wt = 0.0, tt = 0.0, ww = 0.0;
    for (int i = 0; i < len; ++i) wt += w[i] * t[i], tt += t[i] * t[i], ww += double(w[i]) * w[i];
    best = std::min(best, tt > 0 ? ww - wt * wt / tt : ww);
  }
  return best;
}

TEST(QuantTernary, OptimalScaleMatchesExhaustiveSearch) {
  std::mt19937 rng(81);
  std::student_t_distribution<float> d(3.0f);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<float> w(9);
    for (float& v : w) v = d(rng);
    const float s = OptimalTernaryScale(w.data(), 9);
    double e = 0.0;
    for (float v : w) {
      const float t = std::fabs(v) < 0.5f * s ? 0.0f : std::copysign(1.0f, v);
      e += (v - s * t) * (v - s * t);
    }
    const double ref = ExhaustiveTernaryError(w);
    EXPECT_NEAR(e, ref, 1e-5 * (1 + ref)) << "trial " << trial << " scale " << s;
  }
  const std::vector<float> zeros(5, 0.0f);
  EXPECT_EQ(OptimalTernaryScale(zeros.data(), 5), 0.0f);
}

TEST(QuantTernary, GridFamiliesOfTheTable) {
  EXPECT_FALSE(FormatGridFamily(**FindFormat("w2g64")).symmetric());
  EXPECT_FLOAT_EQ(FormatGridFamily(**FindFormat("w2sg32")).center, 1.5f);
  EXPECT_FLOAT_EQ(FormatGridFamily(**FindFormat("w8")).center, 127.0f);
  EXPECT_EQ(FormatGridFamily(**FindFormat("w2sg32")).qmax, 3);
  auto t1 = FindFormat("t1");
  ASSERT_TRUE(t1.ok());
  EXPECT_TRUE(FormatGridFamily(**t1).ternary());
  EXPECT_FLOAT_EQ(FormatGridFamily(**t1).center, 1.0f);
  for (const char* dq : {"w2g32dq", "w2g64dq"}) {
    auto f = FindFormat(dq);
    ASSERT_TRUE(f.ok()) << dq;
    EXPECT_FALSE(FormatGridFamily(**f).symmetric()) << dq;
    EXPECT_EQ(GridUnit(**f, 4096), 256) << dq << ": grids are chosen per super-block";
  }
  EXPECT_EQ(GridUnit(**FindFormat("w2g64"), 4096), 64);
  EXPECT_EQ(GridUnit(**FindFormat("w8"), 4096), 4096);
}

// kMseRefine starts from the clipping search and keeps it per unit when the
// refinement does not pay after rounding: never worse, and better somewhere.
TEST(QuantTernary, RefinedGridsNeverWorseThanClipSearch) {
  const int64_t n = 16, k = 1024;
  const std::vector<float> w = NormalWeights(n * k, 0.02f, 82);
  std::printf("  %-9s %12s %12s\n", "format", "mse clip", "mse refine");
  for (const FormatInfo& f : AllFormats()) {
    if (!HasGrid(f)) continue;
    std::vector<uint8_t> clip(n * RowBytes(f, k)), refine(clip.size());
    QuantizeOptions o;
    LinearQuantResult rc, rr;
    o.grid = GridMethod::kMseClip;
    ASSERT_TRUE(QuantizeLinear(QuantMethod::kRtn, f, w.data(), n, k, nullptr, o, clip, &rc).ok());
    o.grid = GridMethod::kMseRefine;
    ASSERT_TRUE(QuantizeLinear(QuantMethod::kRtn, f, w.data(), n, k, nullptr, o, refine, &rr).ok());
    std::printf("  %-9s %12.4e %12.4e\n", f.name, rc.weight_mse, rr.weight_mse);
    EXPECT_LE(rr.weight_mse, rc.weight_mse) << f.name;
    if (f.group_size > 0 && f.bits <= 2) {
      EXPECT_LT(rr.weight_mse, rc.weight_mse) << f.name;
    }
  }
}

TEST(QuantTernary, GptqWithTheTernaryGridBeatsTernaryRtn) {
  auto found = FindFormat("t1");
  ASSERT_TRUE(found.ok()) << found.status().message();
  const FormatInfo& f = **found;
  const int64_t n = 48, k = 768, m = 2048;
  const std::vector<float> x = CorrelatedActivations(m, k, 4, 8.0f, 83);
  const std::vector<float> w = NormalWeights(n * k, 0.02f, 84);
  const LayerStats s = StatsOf(x, k);
  std::vector<uint8_t> packed(n * RowBytes(f, k));
  LinearQuantResult mm, clip, refine, gptq;
  QuantizeOptions o;
  o.error_rows = 0;
  o.grid = GridMethod::kMinMax;
  ASSERT_TRUE(QuantizeLinear(QuantMethod::kRtn, f, w.data(), n, k, &s, o, packed, &mm).ok());
  o.grid = GridMethod::kMseClip;
  ASSERT_TRUE(QuantizeLinear(QuantMethod::kRtn, f, w.data(), n, k, &s, o, packed, &clip).ok());
  o.grid = GridMethod::kMseRefine;
  ASSERT_TRUE(QuantizeLinear(QuantMethod::kRtn, f, w.data(), n, k, &s, o, packed, &refine).ok());
  ASSERT_TRUE(QuantizeLinear(QuantMethod::kGptq, f, w.data(), n, k, &s, o, packed, &gptq).ok());
  std::printf("  t1 output error: rtn minmax %.5f, rtn clip %.5f, rtn optimal %.5f, gptq %.5f\n",
              mm.rel_output_error, clip.rel_output_error, refine.rel_output_error,
              gptq.rel_output_error);
  std::printf("  t1 weight mse:   rtn minmax %.4e, rtn clip %.4e, rtn optimal %.4e\n",
              mm.weight_mse, clip.weight_mse, refine.weight_mse);
  EXPECT_LE(refine.weight_mse, clip.weight_mse);
  EXPECT_LT(refine.weight_mse, mm.weight_mse);
  EXPECT_LT(gptq.rel_output_error, refine.rel_output_error);
  EXPECT_LT(gptq.rel_output_error, clip.rel_output_error);
}

}  // namespace
}  // namespace bitlens::quant
