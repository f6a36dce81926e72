// QMatMulRef, the packed-weight reference GEMV/GEMM: equals dequantize + the
// float MatMulRef within the f32 summation bound for every format, and gives
// the hand-computed value on a tiny w2g32 block.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "base/f16.h"
#include "kernels/ops.h"
#include "quant/formats.h"
#include "quant/grid.h"
#include "quant/qmatmul_ref.h"
#include "quant/rtn.h"

namespace bitlens::quant {
namespace {

// Bound on |Σ_i a_i·w_i evaluated in f32 − exact| for a chain of `ops` f32
// roundings: γ_ops · Σ|terms| (Higham, γ_n = n·u / (1 − n·u), u = 2^-24).
double Gamma(int64_t ops) {
  const double u = std::ldexp(1.0, -24);
  return ops * u / (1.0 - ops * u);
}

// Σ_i |x_i| · |decoded magnitude| of one packed row, split the way QMatMulRef
// splits it: |scale|·|c_i| plus |min| for min formats (c_i up to qmax, 1.5 for
// the stretched grid, 1 for ternary), |w_i| otherwise.
double AbsTermSum(const FormatInfo& f, const uint8_t* row, const float* x, const float* w,
                  int64_t k) {
  double s = 0.0;
  if (f.group_size == 0) {
    for (int64_t i = 0; i < k; ++i) s += std::fabs(double(x[i]) * w[i]);
    return s;
  }
  std::vector<GroupGrid> grids(NumGroups(f, k));
  std::vector<uint8_t> codes(k);
  DecodeRow(f, row, k, grids.data(), codes.data());
  for (int64_t i = 0; i < k; ++i) {
    const GroupGrid& g = grids[i / f.group_size];
    double term = 0.0;
    switch (f.encoding) {
      case ScaleEncoding::kF16ScaleStretched:
        term = 1.5 * std::fabs(g.scale);
        break;
      case ScaleEncoding::kF16ScaleTernary:
        term = std::fabs(g.scale);
        break;
      default:
        term = std::fabs(g.scale) * QMax(f) + std::fabs(g.offset);
    }
    s += std::fabs(double(x[i])) * term;
  }
  return s;
}

TEST(QuantMatMulRef, MatchesDequantizeThenMatMulForEveryFormat) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> wd(0.0f, 0.02f), xd(0.0f, 1.0f);
  for (const FormatInfo& f : AllFormats()) {
    const int64_t unit = std::max<int64_t>(f.block_weights, 32);
    double worst_diff = 0.0, worst_ratio = 0.0;
    // Whole blocks and ragged rows (the last block partial, its padding unread).
    for (int64_t k : {int64_t{1}, int64_t{31}, int64_t{33}, int64_t{100}, unit, 3 * unit + 5,
                      4096 / unit * unit, int64_t{4304}}) {
      for (int64_t n : {1, 7, 33}) {
        for (int64_t m : {1, 3}) {
          std::vector<float> w(static_cast<size_t>(n * k)), x(static_cast<size_t>(m * k)), bias(n);
          for (float& v : w) v = wd(rng);
          for (float& v : x) v = xd(rng);
          for (float& v : bias) v = 0.1f * xd(rng);
          std::vector<uint8_t> packed(static_cast<size_t>(n) * RowBytes(f, k));
          ASSERT_TRUE(QuantizeRowsRef(f, w.data(), n, k, RangeSearch::kMinMax, packed).ok());
          std::vector<float> wq(static_cast<size_t>(n * k));
          ASSERT_TRUE(DequantizeRowsRef(f, packed, n, k, wq.data()).ok());
          std::vector<float> want(static_cast<size_t>(m * n)), got(static_cast<size_t>(m * n));
          kernels::MatMulRef(x.data(), m, {DType::kF32, wq.data(), n, k}, bias.data(), want.data());
          QMatMulRef(x.data(), m, f, packed.data(), n, k, bias.data(), got.data());
          // f32 roundings on the longest path: group formats g products/adds in
          // the group chain, scale·acc and min·sx and their add (3), k/g adds of
          // group sums, the bias add, and the reference's own rounding of each
          // decoded weight (1); per-row formats k + 3. The reference accumulates
          // in f64 and rounds once more at the end (u·|want|).
          const int64_t ops = f.group_size > 0
                                  ? f.group_size + 3 + (k + f.group_size - 1) / f.group_size + 2
                                  : k + 3;
          const size_t rb = RowBytes(f, k);
          for (int64_t r = 0; r < m; ++r) {
            for (int64_t o = 0; o < n; ++o) {
              const float* xr = x.data() + r * k;
              const double terms = AbsTermSum(f, packed.data() + o * rb, xr, wq.data() + o * k, k) +
                                   std::fabs(bias[o]);
              const double want_v = want[r * n + o], got_v = got[r * n + o];
              const double tol = Gamma(ops) * terms + std::ldexp(std::fabs(want_v), -24);
              const double diff = std::fabs(got_v - want_v);
              worst_diff = std::max(worst_diff, diff);
              worst_ratio = std::max(worst_ratio, diff / tol);
              ASSERT_LE(diff, tol) << f.name << " m=" << m << " n=" << n << " k=" << k << " r=" << r
                                   << " o=" << o << ": got " << got_v << " want " << want_v;
            }
          }
        }
      }
    }
    std::printf("[ QMatMulRef ] %-7s worst |diff| %.3e, worst diff/tolerance %.3f\n", f.name,
                worst_diff, worst_ratio);
  }
}

// One w2g32 block, scale 0.5, min -1, code of weight i = i % 4, so
// w_i = -1 + 0.5·(i % 4). Byte j holds weights j, j+8, j+16, j+24 (all code
// j % 4) at bits 0, 2, 4, 6: byte = (j % 4)·0x55.
// Row x_i = i: Σ i·(-1) + 0.5·Σ i·(i % 4) = -496 + 0.5·784 = -104; +bias 0.25.
// Row x_i = 1: -32 + 0.5·48 = -8; +0.25.
TEST(QuantMatMulRef, HandComputedW2G32) {
  Result<const FormatInfo*> f = FindFormat("w2g32");
  ASSERT_TRUE(f.ok());
  BlockW2G32 block;
  block.scale = F32ToF16(0.5f);
  block.min = F32ToF16(-1.0f);
  for (int j = 0; j < 8; ++j) block.q[j] = static_cast<uint8_t>((j % 4) * 0x55);
  std::vector<uint8_t> packed(sizeof(block));
  std::memcpy(packed.data(), &block, sizeof(block));
  std::vector<float> x(64);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i), x[32 + i] = 1.0f;
  const float bias = 0.25f;
  float y[2];
  QMatMulRef(x.data(), 2, **f, packed.data(), 1, 32, &bias, y);
  EXPECT_EQ(y[0], -103.75f);
  EXPECT_EQ(y[1], -7.75f);
}

}  // namespace
}  // namespace bitlens::quant
