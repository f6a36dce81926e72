// HQQ: the shrinkage operator, and calibration-free grids whose weight error
// is at or below min-max RTN for every grid format (printed per format).
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "quant/hqq.h"
#include "quant/quantize_layer.h"
#include "quant/rtn.h"
#include "quant_algos_testdata.h"

namespace bitlens::quant {
namespace {

TEST(QuantHqq, ShrinkIsTheLpProximalStep) {
  // |x| − |x|^(p−1)/β, clamped at zero, sign kept.
  EXPECT_FLOAT_EQ(HqqShrink(2.0f, 10.0f, 0.7f), 2.0f - std::pow(2.0f, -0.3f) / 10.0f);
  EXPECT_FLOAT_EQ(HqqShrink(-2.0f, 10.0f, 0.7f), -(2.0f - std::pow(2.0f, -0.3f) / 10.0f));
  EXPECT_EQ(HqqShrink(0.05f, 10.0f, 0.7f), 0.0f);  // small errors are absorbed
  EXPECT_EQ(HqqShrink(0.0f, 10.0f, 0.7f), 0.0f);
  EXPECT_FLOAT_EQ(HqqShrink(1.0f, 4.0f, 1.0f), 0.75f);  // p = 1: soft threshold 1/β
}

std::vector<float> HeavyTailed(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> d(3.0f);
  std::vector<float> w(static_cast<size_t>(count));
  for (float& v : w) v = 0.01f * d(rng);
  return w;
}

double Mse(const FormatInfo& f, const std::vector<float>& w, const std::vector<uint8_t>& packed,
           int64_t n, int64_t k) {
  std::vector<float> back(w.size());
  EXPECT_TRUE(DequantizeRowsRef(f, packed, n, k, back.data()).ok());
  double e = 0.0;
  for (size_t i = 0; i < w.size(); ++i) e += (double(w[i]) - back[i]) * (double(w[i]) - back[i]);
  return e / static_cast<double>(w.size());
}

TEST(QuantHqq, WeightErrorAtOrBelowMinMaxRtn) {
  const int64_t n = 32, k = 1024;
  const std::vector<float> normal = testdata::NormalWeights(n * k, 0.02f, 61);
  const std::vector<float> heavy = HeavyTailed(n * k, 62);
  std::printf("  %-9s %-8s %12s %12s %12s %12s\n", "format", "data", "rtn minmax", "rtn mseclip",
              "hqq paper", "hqq (clip)");
  for (const FormatInfo& f : AllFormats()) {
    if (!HasGrid(f)) continue;
    for (const auto* w : {&normal, &heavy}) {
      std::vector<uint8_t> mm(n * RowBytes(f, k)), clip(mm.size()), paper(mm.size()), hqq(mm.size());
      LinearQuantResult r;
      QuantizeOptions o;
      o.grid = GridMethod::kMinMax;
      ASSERT_TRUE(QuantizeLinear(QuantMethod::kRtn, f, w->data(), n, k, nullptr, o, mm, &r).ok());
      o.grid = GridMethod::kMseClip;
      ASSERT_TRUE(QuantizeLinear(QuantMethod::kRtn, f, w->data(), n, k, nullptr, o, clip, nullptr).ok());
      ASSERT_TRUE(QuantizeLinear(QuantMethod::kHqq, f, w->data(), n, k, nullptr, o, hqq, &r).ok());
      o.hqq.start_from_clip = false;  // the paper: start from min-max
      ASSERT_TRUE(QuantizeLinear(QuantMethod::kHqq, f, w->data(), n, k, nullptr, o, paper, nullptr).ok());
      const double e_mm = Mse(f, *w, mm, n, k), e_clip = Mse(f, *w, clip, n, k),
                   e_paper = Mse(f, *w, paper, n, k), e_hqq = Mse(f, *w, hqq, n, k);
      std::printf("  %-9s %-8s %12.4e %12.4e %12.4e %12.4e\n", f.name,
                  w == &normal ? "normal" : "t(3)", e_mm, e_clip, e_paper, e_hqq);
      EXPECT_NEAR(r.weight_mse, e_hqq, 1e-6 * e_hqq) << f.name;
      EXPECT_EQ(r.rel_output_error, -1.0) << "no stats, no output error";
      EXPECT_LE(e_paper, e_mm) << f.name;
      EXPECT_LE(e_hqq, e_mm) << f.name;
      // On groups, HQQ's zero/scale updates must actually move the min-max grid.
      if (f.group_size > 0) {
        EXPECT_LT(e_paper, 0.99 * e_mm) << f.name;
      }
    }
  }
}

}  // namespace
}  // namespace bitlens::quant
