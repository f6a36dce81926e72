// AWQ: the α search never loses to plain RTN (α = 0 is on the grid) and wins
// on activations with outlier channels; the folded scales give the same layer
// output error whether measured on (W, X) or on (W·diag(s), X·diag(1/s)).
#include <cmath>
#include <cstdio>
#include <vector>

#include <gtest/gtest.h>

#include "quant/awq.h"
#include "quant/quantize_layer.h"
#include "quant/rtn.h"
#include "quant_algos_testdata.h"

namespace bitlens::quant {
namespace {

using testdata::CorrelatedActivations;
using testdata::NormalWeights;
using testdata::StatsOf;

// Quantizes w [n, k] with RTN as AWQ prescribes: Q(W·diag(s))·diag(1/s).
std::vector<float> AwqDequantized(const FormatInfo& f, const std::vector<float>& w, int64_t n,
                                  int64_t k, const std::vector<float>& s, GridMethod grid) {
  std::vector<float> ws = w;
  ScaleInputChannels(ws.data(), n, k, s.data());
  std::vector<uint8_t> packed(n * RowBytes(f, k));
  QuantizeOptions o;
  o.grid = grid;
  EXPECT_TRUE(QuantizeLinear(QuantMethod::kRtn, f, ws.data(), n, k, nullptr, o, packed, nullptr).ok());
  std::vector<float> back(w.size());
  EXPECT_TRUE(DequantizeRowsRef(f, packed, n, k, back.data()).ok());
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < k; ++j) back[r * k + j] /= s[j];
  return back;
}

TEST(QuantAwq, ScalesLowerOutputErrorWithOutlierChannels) {
  const int64_t k = 512, m = 1024, nq = 48, nk = 32;
  const std::vector<float> x = CorrelatedActivations(m, k, 6, 20.0f, 71);
  const std::vector<float> wq = NormalWeights(nq * k, 0.02f, 72), wk = NormalWeights(nk * k, 0.02f, 73);
  const LayerStats s = StatsOf(x, k);
  const AwqWeight mats[] = {{wq.data(), nq}, {wk.data(), nk}};
  std::printf("  %-8s %-9s %6s %14s %14s %14s %14s\n", "format", "grid", "alpha", "rtn (q)",
              "awq+rtn (q)", "gptq (q)", "awq+gptq (q)");
  for (const char* name : {"w2g64", "w2g32", "w2sg32", "w4g32"}) {
    const FormatInfo& f = **FindFormat(name);
    for (const GridMethod grid : {GridMethod::kMinMax, GridMethod::kMseClip}) {
      AwqOptions o;
      o.grid = grid;
      o.sample_rows = 0;  // the search's metric is then the full output error
      AwqResult r;
      ASSERT_TRUE(AwqSearchScales(f, mats, k, s, o, &r).ok());
      ASSERT_EQ(r.scales.size(), size_t(k));
      ASSERT_EQ(r.error_by_alpha.size(), size_t(20));
      EXPECT_EQ(r.error_plain, r.error_by_alpha[0]);
      EXPECT_LE(r.error_scaled, r.error_plain) << name;
      // Min-max grids are where outlier channels hurt most (AWQ's setting):
      // scaling must win clearly there. With the clipping search it may tie
      // (α = 0), never lose.
      if (grid == GridMethod::kMinMax) {
        EXPECT_GT(r.alpha, 0.0f) << name << ": outlier channels must call for scaling";
        EXPECT_LT(r.error_scaled, 0.97 * r.error_plain) << name;
      }

      // The relative output error of q_proj, plain vs AWQ, measured on the original (W, X).
      QuantizeOptions qo;
      qo.grid = grid;
      qo.error_rows = 0;
      std::vector<uint8_t> packed(nq * RowBytes(f, k));
      LinearQuantResult plain;
      ASSERT_TRUE(QuantizeLinear(QuantMethod::kRtn, f, wq.data(), nq, k, &s, qo, packed, &plain).ok());
      const std::vector<float> awq_hat = AwqDequantized(f, wq, nq, k, r.scales, grid);
      const double awq_err = *RelativeOutputError(wq.data(), awq_hat.data(), nq, k, s, 0);
      // The same, measured in the scaled space: W·diag(s) against X·diag(1/s).
      std::vector<float> ws = wq;
      ScaleInputChannels(ws.data(), nq, k, r.scales.data());
      const LayerStats scaled = ScaledStats(s, r.scales.data());
      LinearQuantResult in_scaled;
      ASSERT_TRUE(QuantizeLinear(QuantMethod::kRtn, f, ws.data(), nq, k, &scaled, qo, packed, &in_scaled).ok());
      EXPECT_NEAR(in_scaled.rel_output_error, awq_err, 1e-3 * awq_err) << name;
      // GPTQ alone and after AWQ (printed; GPTQ compensates much of what AWQ fixes).
      LinearQuantResult gptq, awq_gptq;
      ASSERT_TRUE(QuantizeLinear(QuantMethod::kGptq, f, wq.data(), nq, k, &s, qo, packed, &gptq).ok());
      ASSERT_TRUE(QuantizeLinear(QuantMethod::kGptq, f, ws.data(), nq, k, &scaled, qo, packed, &awq_gptq).ok());
      std::printf("  %-8s %-9s %6.2f %14.5f %14.5f %14.5f %14.5f\n", name,
                  grid == GridMethod::kMinMax ? "minmax" : "mseclip", r.alpha,
                  plain.rel_output_error, awq_err, gptq.rel_output_error, awq_gptq.rel_output_error);
      EXPECT_LE(awq_err, plain.rel_output_error * (1 + 1e-6)) << name;
      if (grid == GridMethod::kMinMax) {
        EXPECT_LT(awq_err, plain.rel_output_error) << name;
      }
      EXPECT_LT(gptq.rel_output_error, plain.rel_output_error) << name;
    }
  }
}

TEST(QuantAwq, ScaledStatsAreTheStatsOfTheScaledInput) {
  const int64_t k = 16, m = 30;
  std::vector<float> x = CorrelatedActivations(m, k, 1, 5.0f, 74);
  const LayerStats s = StatsOf(x, k);
  std::vector<float> sc(k);
  for (int64_t j = 0; j < k; ++j) sc[j] = 0.5f + 0.1f * j;
  for (int64_t t = 0; t < m; ++t)
    for (int64_t j = 0; j < k; ++j) x[t * k + j] /= sc[j];
  const LayerStats direct = StatsOf(x, k);
  const LayerStats scaled = ScaledStats(s, sc.data());
  for (int64_t i = 0; i < k; ++i) {
    EXPECT_NEAR(scaled.abs_sum[i], direct.abs_sum[i], 1e-4 * direct.abs_sum[i]);
    for (int64_t j = i; j < k; ++j)
      EXPECT_NEAR(scaled.Xtx(i, j), direct.Xtx(i, j), 1e-3 + 1e-4 * std::fabs(direct.Xtx(i, j)));
  }
}

TEST(QuantAwq, ClearErrors) {
  const int64_t k = 64;
  const std::vector<float> w = NormalWeights(4 * k, 0.02f, 75);
  const LayerStats s = StatsOf(CorrelatedActivations(32, k, 1, 4.0f, 76), k);
  const FormatInfo& f = **FindFormat("w2g32");
  AwqResult r;
  const AwqWeight one[] = {{w.data(), 4}};
  EXPECT_FALSE(AwqSearchScales(f, {}, k, s, AwqOptions{}, &r).ok());
  const Status wrong_k = AwqSearchScales(f, one, k / 2, s, AwqOptions{}, &r);
  EXPECT_NE(wrong_k.message().find("k=64"), std::string::npos) << wrong_k.message();
  EXPECT_FALSE(AwqSearchScales(**FindFormat("f16"), one, k, s, AwqOptions{}, &r).ok());
  EXPECT_FALSE(AwqSearchScales(f, one, k, LayerStats(k), AwqOptions{}, &r).ok());
}

}  // namespace
}  // namespace bitlens::quant
