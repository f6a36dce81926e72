// The W2A8 path: the int8 activation quantizer and QMatMulA8Ref pinned on
// hand-computed values; the Highway kernel equal to the reference bit for bit
// on every target, format, ragged shape and thread count; the int8 error
// within its rounding bound; and the accuracy table of docs/kernels.md.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <filesystem>

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "base/f16.h"
#include "base/thread_pool.h"
#include "kernels/ops.h"
#include "kernels/qmatmul.h"
#include "kernels/qmatmul_a8.h"
#include "kernels/qmatmul_lut.h"
#include "quant/formats.h"
#include "quant/grid.h"
#include "quant/qmatmul_ref.h"
#include "quant/pipeline.h"
#include "quant/rtn.h"
#include "model/model.h"
#include "runtime/session.h"
#include "test_paths.h"

namespace bitlens::kernels {
namespace {

using quant::FormatInfo;

void ForEachTarget(const std::function<void(const char*)>& check) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    check(hwy::TargetName(target));
  }
  hwy::SetSupportedTargetsForTest(0);
}

std::vector<uint8_t> Quantize(const FormatInfo& f, const std::vector<float>& w, int64_t n, int64_t k) {
  std::vector<uint8_t> packed(static_cast<size_t>(n) * quant::RowBytes(f, k));
  EXPECT_TRUE(quant::QuantizeRowsRef(f, w.data(), n, k, quant::RangeSearch::kMinMax, packed).ok()) << f.name;
  return packed;
}

// Weights with heavy tails (Student-t(3)-like) so codes use their whole range.
std::vector<float> RandomWeights(std::mt19937& rng, int64_t count) {
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> w(static_cast<size_t>(count));
  for (float& v : w) v = 0.02f * t(rng);
  return w;
}

// LLM-like activations: unit normal with 1 % outlier channels (the same
// channels in every row) scaled by `outlier`.
std::vector<float> RandomActivations(std::mt19937& rng, int64_t m, int64_t k, float outlier) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m * k));
  for (float& v : x) v = nd(rng);
  std::mt19937 ch_rng(99);
  for (int64_t c = 0; c < std::max<int64_t>(1, k / 100); ++c) {
    const int64_t j = static_cast<int64_t>(ch_rng() % static_cast<uint32_t>(k));
    for (int64_t r = 0; r < m; ++r) x[r * k + j] *= outlier;
  }
  return x;
}

std::vector<const FormatInfo*> A8Formats() {
  std::vector<const FormatInfo*> out;
  for (const FormatInfo& f : quant::AllFormats()) {
    if (A8Supports(f, 64)) out.push_back(&f);
  }
  return out;
}

TEST(QMatMulA8Ref, QuantizesActivationBlocksHandComputed) {
  // Block 0: max |x| = 127, so d = 1 and x·127/127 rounds to even: 2.5 -> 2,
  // -3.5 -> -4, 0.49999997 -> 0 (an add-0.5-and-truncate rounding gives 1).
  // Block 1 (ragged, 3 values): max 2 -> d = 2/127, xq = round(x·63.5).
  std::vector<float> x(35, 0.0f);
  x[0] = 127.0f, x[1] = 2.5f, x[2] = -3.5f, x[3] = 0.49999997f, x[4] = -127.0f;
  x[32] = 2.0f, x[33] = -1.0f, x[34] = 0.5f;
  std::vector<int8_t> xq(64, 99);
  float d[2];
  int32_t bsum[2];
  QuantizeActivationsA8Ref(x.data(), 35, xq.data(), d, bsum);
  EXPECT_EQ(d[0], 1.0f);
  EXPECT_EQ(xq[0], 127);
  EXPECT_EQ(xq[1], 2);
  EXPECT_EQ(xq[2], -4);
  EXPECT_EQ(xq[3], 0);
  EXPECT_EQ(xq[4], -127);
  EXPECT_EQ(bsum[0], 127 + 2 - 4 + 0 - 127);
  EXPECT_EQ(d[1], 2.0f / 127.0f);
  EXPECT_EQ(xq[32], 127);
  EXPECT_EQ(xq[33], -64);  // -63.5 ties to even
  EXPECT_EQ(xq[34], 32);   // 31.75
  for (int i = 35; i < 64; ++i) EXPECT_EQ(xq[i], 0) << "padding at " << i;
  EXPECT_EQ(bsum[1], 127 - 64 + 32);
}

// One w2g32 block, scale 0.5, min -1, code of weight i = i % 4 (byte j holds
// weights j, j+8, j+16, j+24, all code j % 4: byte = (j % 4)·0x55).
// x_0 = 127, x_i = i for i = 1..31: d = 1 and xq = x, so
// y = 127·(-1) + Σ_{i≥1} i·(-1 + 0.5·(i % 4)) = -127 - 496 + 392 = -231; + bias.
TEST(QMatMulA8Ref, HandComputedW2G32) {
  Result<const FormatInfo*> f = quant::FindFormat("w2g32");
  ASSERT_TRUE(f.ok());
  quant::BlockW2G32 block;
  block.scale = F32ToF16(0.5f);
  block.min = F32ToF16(-1.0f);
  for (int j = 0; j < 8; ++j) block.q[j] = static_cast<uint8_t>((j % 4) * 0x55);
  std::vector<uint8_t> packed(sizeof(block));
  std::memcpy(packed.data(), &block, sizeof(block));
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i);
  x[0] = 127.0f;
  const float bias = 0.25f;
  float y = 0.0f, y_fast = 0.0f;
  QMatMulA8Ref(x.data(), 1, **f, packed.data(), 1, 32, &bias, &y);
  QMatMulA8(x.data(), 1, **f, packed.data(), 1, 32, &bias, &y_fast);
  std::printf("[ QMatMulA8 ] hand-computed w2g32: ref %.6f fast %.6f want -230.75\n", y, y_fast);
  EXPECT_EQ(y, -230.75f);
  EXPECT_EQ(y_fast, -230.75f);
}

TEST(QMatMulA8, SupportsEveryGroupFormatButNotPassthrough) {
  for (const FormatInfo& f : quant::AllFormats()) {
    const bool want = quant::HasGrid(f);
    EXPECT_EQ(A8Supports(f, 100), want) << f.name;
    std::printf("[ QMatMulA8 ] %-8s int8 path %s\n", f.name, A8Supports(f, 100) ? "yes" : "no (f32 path)");
  }
  Result<const FormatInfo*> w2 = quant::FindFormat("w2g64");
  ASSERT_TRUE(w2.ok());
  EXPECT_FALSE(A8Supports(**w2, kA8MaxK + 1));
  EXPECT_FALSE(A8Supports(**w2, 0));
}

// Bit-exact against the reference: every A8 format, ragged k and n, m = 1 and
// m > 1 (more rows than one quantized block holds), threads 1 and 2, every
// Highway target, with and without bias.
TEST(QMatMulA8, EqualsReferenceExactlyAllFormatsRaggedShapes) {
  std::mt19937 rng(7);
  const std::vector<int64_t> ks = {1, 5, 31, 32, 33, 64, 100, 127, 129, 257, 1000};
  const std::vector<int64_t> ns = {1, 3, 17, 33, 70};  // 70: decode takes the table kernel
  int64_t checked = 0, mismatches = 0;
  for (const FormatInfo* f : A8Formats()) {
    for (int64_t k : ks) {
      for (int64_t n : ns) {
        const int64_t m = (k + n) % 2 == 0 ? 1 : 9;  // 9 > 8 rows per quantized block
        const std::vector<float> w = RandomWeights(rng, n * k);
        const std::vector<float> x = RandomActivations(rng, m, k, 20.0f);
        std::vector<float> bias(n);
        for (float& b : bias) b = 0.01f * static_cast<float>(rng() % 200) - 1.0f;
        const std::vector<uint8_t> packed = Quantize(*f, w, n, k);
        for (bool with_bias : {false, true}) {
          const float* bp = with_bias ? bias.data() : nullptr;
          std::vector<float> want(m * n);
          QMatMulA8Ref(x.data(), m, *f, packed.data(), n, k, bp, want.data());
          ForEachTarget([&](const char* target) {
            for (size_t threads : {1, 2}) {
              SetNumThreads(threads);
              std::vector<float> got(m * n, -1e30f), dots(m * n, -1e30f);
              QMatMulA8(x.data(), m, *f, packed.data(), n, k, bp, got.data());
              QMatMulA8Dots(x.data(), m, *f, packed.data(), n, k, bp, dots.data());
              for (int64_t i = 0; i < m * n; ++i) {
                ++checked;
                if (!(got[i] == want[i]) || !(dots[i] == want[i])) {
                  if (++mismatches <= 10) {
                    ADD_FAILURE() << f->name << " " << target << " threads=" << threads << " m=" << m
                                  << " n=" << n << " k=" << k << " i=" << i << ": got " << got[i]
                                  << " (integer-dot kernel " << dots[i] << ") want " << want[i];
                  }
                }
              }
            }
          });
        }
      }
    }
  }
  SetNumThreads(0);
  std::printf("[ QMatMulA8 ] %lld outputs compared over %zu formats, %lld not bit-identical\n",
              static_cast<long long>(checked), A8Formats().size(), static_cast<long long>(mismatches));
  EXPECT_EQ(mismatches, 0);
}

// The longest rows: k = kA8MaxK (one quantized row per block, so m = 3 takes
// three passes) and a ragged k just below it.
TEST(QMatMulA8, EqualsReferenceExactlyAtMaxK) {
  std::mt19937 rng(11);
  for (const char* name : {"w2g128", "w8"}) {
    Result<const FormatInfo*> f = quant::FindFormat(name);
    ASSERT_TRUE(f.ok());
    for (int64_t k : {kA8MaxK, kA8MaxK - 3}) {
      const int64_t n = 5, m = 3;
      const std::vector<float> w = RandomWeights(rng, n * k);
      const std::vector<float> x = RandomActivations(rng, m, k, 50.0f);
      const std::vector<uint8_t> packed = Quantize(**f, w, n, k);
      std::vector<float> want(m * n), got(m * n);
      QMatMulA8Ref(x.data(), m, **f, packed.data(), n, k, nullptr, want.data());
      QMatMulA8(x.data(), m, **f, packed.data(), n, k, nullptr, got.data());
      int bad = 0;
      for (int64_t i = 0; i < m * n; ++i) bad += !(got[i] == want[i]);
      std::printf("[ QMatMulA8 ] %-6s k=%lld: %d of %lld outputs differ (y[0] %.6f vs %.6f)\n", name,
                  static_cast<long long>(k), bad, static_cast<long long>(m * n), got[0], want[0]);
      EXPECT_EQ(bad, 0) << name << " k=" << k;
    }
  }
}

// Dequantized weights ŵ [n, k] of a packed matrix.
std::vector<float> Dequantize(const FormatInfo& f, const std::vector<uint8_t>& packed, int64_t n, int64_t k) {
  std::vector<float> wq(static_cast<size_t>(n * k));
  EXPECT_TRUE(quant::DequantizeRowsRef(f, packed, n, k, wq.data()).ok());
  return wq;
}

// y = x · ŵ^T in f64 with the activations as given.
std::vector<double> MatMulF64(const std::vector<float>& x, int64_t m, const std::vector<float>& w, int64_t n,
                              int64_t k) {
  std::vector<double> y(static_cast<size_t>(m * n), 0.0);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t o = 0; o < n; ++o) {
      double s = 0.0;
      for (int64_t i = 0; i < k; ++i) s += double(x[r * k + i]) * w[o * k + i];
      y[r * n + o] = s;
    }
  }
  return y;
}

// |A8 − x·ŵ| is bounded by the activation rounding and the f32 evaluation:
//   x̂_i = d_b·xq_i differs from x_i by at most d_b/2 + 3.01u·|x_i| (the
//   roundings of 127/max, max/127 and x·inv; u = 2^-24);
//   ŵ from DequantizeRowsRef differs from scale·q + offset by u·|ŵ|;
//   the formula's f32 chain per output has at most 2·(blocks per group) +
//   groups + 6 roundings, each relative to M = Σ_i d_b·|xq_i|·(|scale|·q_i + |offset|).
// A dropped block, a wrong scale or a swapped activation breaks the bound.
TEST(QMatMulA8, WithinActivationRoundingBoundOfDequantizedFloat) {
  std::mt19937 rng(3);
  const double u = std::ldexp(1.0, -24);
  for (const FormatInfo* f : A8Formats()) {
    const int64_t n = 16, m = 2, k = 1000;
    const std::vector<float> w = RandomWeights(rng, n * k);
    const std::vector<float> x = RandomActivations(rng, m, k, 30.0f);
    const std::vector<uint8_t> packed = Quantize(*f, w, n, k);
    const std::vector<float> wq = Dequantize(*f, packed, n, k);
    const std::vector<double> exact = MatMulF64(x, m, wq, n, k);
    std::vector<float> got(m * n);
    QMatMulA8(x.data(), m, *f, packed.data(), n, k, nullptr, got.data());
    const int64_t nb = (k + kA8Block - 1) / kA8Block, ng = quant::NumGroups(*f, k);
    const int64_t g = f->group_size == 0 ? k : f->group_size;
    std::vector<int8_t> xq(nb * kA8Block);
    std::vector<float> d(nb);
    std::vector<int32_t> bsum(nb);
    std::vector<quant::GroupGrid> grids(ng);
    std::vector<uint8_t> codes(k);
    const double ops = 2.0 * ((g + kA8Block - 1) / kA8Block) + ng + 6;
    const size_t rb = quant::RowBytes(*f, k);
    double worst = 0.0;
    for (int64_t r = 0; r < m; ++r) {
      QuantizeActivationsA8Ref(x.data() + r * k, k, xq.data(), d.data(), bsum.data());
      for (int64_t o = 0; o < n; ++o) {
        quant::DecodeRow(*f, packed.data() + o * rb, k, grids.data(), codes.data());
        double act_bound = 0.0, mag = 0.0;
        for (int64_t i = 0; i < k; ++i) {
          const double wi = std::fabs(wq[o * k + i]), xi = std::fabs(double(x[r * k + i]));
          const double db = d[i / kA8Block], xhat = db * std::abs(int(xq[i]));
          const quant::GroupGrid& gr = grids[i / g];
          act_bound += wi * (db / 2.0 + 3.01 * u * xi) + xhat * u * wi;
          mag += xhat * (std::fabs(gr.scale) * codes[i] + std::fabs(gr.offset));
        }
        const double tol = act_bound + ops * u * mag / (1.0 - ops * u);
        const double diff = std::fabs(got[r * n + o] - exact[r * n + o]);
        worst = std::max(worst, diff / tol);
        ASSERT_LE(diff, tol) << f->name << " r=" << r << " o=" << o << ": got " << got[r * n + o] << " exact "
                             << exact[r * n + o] << " activation bound " << act_bound;
      }
    }
    std::printf("[ QMatMulA8 ] %-8s worst |A8 − x·ŵ| / bound %.3f\n", f->name, worst);
  }
}

TEST(QMatMulA8, QMatMulAndMatMulFollowTheOption) {
  Result<const FormatInfo*> f = quant::FindFormat("w2g64");
  ASSERT_TRUE(f.ok());
  std::mt19937 rng(5);
  const int64_t n = 40, m = 2, k = 320;
  const std::vector<float> w = RandomWeights(rng, n * k);
  const std::vector<float> x = RandomActivations(rng, m, k, 10.0f);
  const std::vector<uint8_t> packed = Quantize(**f, w, n, k);
  std::vector<float> a8_ref(m * n), via_qmatmul(m * n), via_matmul(m * n), a16(m * n);
  QMatMulA8Ref(x.data(), m, **f, packed.data(), n, k, nullptr, a8_ref.data());
  EXPECT_EQ(GetQActivations(), QActivations::kF32) << "the default is W2A16";
  SetQActivations(QActivations::kInt8);
  QMatMul(x.data(), m, **f, packed.data(), n, k, nullptr, via_qmatmul.data());
  WeightView view{DType::kU8, packed.data(), n, k};
  view.format = *f;
  MatMul(x.data(), m, view, nullptr, via_matmul.data());
  SetQActivations(QActivations::kF32);
  QMatMul(x.data(), m, **f, packed.data(), n, k, nullptr, a16.data());
  int differ_a16 = 0;
  for (int64_t i = 0; i < m * n; ++i) {
    EXPECT_EQ(via_qmatmul[i], a8_ref[i]) << i;
    EXPECT_EQ(via_matmul[i], a8_ref[i]) << i;
    differ_a16 += a16[i] != a8_ref[i];
  }
  std::printf("[ QMatMulA8 ] option a8: QMatMul and MatMul equal the A8 reference; a16 differs in %d of %lld\n",
              differ_a16, static_cast<long long>(m * n));
  EXPECT_GT(differ_a16, m * n / 2) << "with the option back at a16, QMatMul must not take the int8 path";
}

// a8lut: decode of a table format (t1: int8 blocks of 256) is QMatMulLutRef;
// prefill rows and formats without tables are a8. Names round-trip.
TEST(QMatMulA8, A8LutOptionDecodesThroughTheTableKernel) {
  Result<const FormatInfo*> t1 = quant::FindFormat("t1");
  Result<const FormatInfo*> w4 = quant::FindFormat("w4g32");
  ASSERT_TRUE(t1.ok() && w4.ok());
  std::mt19937 rng(6);
  const int64_t n = 70, k = 600;
  int lut_equal = 0, a8_equal = 0, prefill_a8_equal = 0, w4_a8_equal = 0;
  const std::vector<float> x = RandomActivations(rng, 2, k, 20.0f);
  for (const FormatInfo* f : {*t1, *w4}) {
    const std::vector<float> w = RandomWeights(rng, n * k);
    const std::vector<uint8_t> packed = Quantize(*f, w, n, k);
    std::vector<float> lut_ref(n), a8_ref(2 * n), got1(n), got2(2 * n);
    QMatMulLutRef(x.data(), 1, *f, packed.data(), n, k, nullptr, lut_ref.data());
    QMatMulA8Ref(x.data(), 2, *f, packed.data(), n, k, nullptr, a8_ref.data());
    SetQActivations(QActivations::kInt8Lut);
    QMatMul(x.data(), 1, *f, packed.data(), n, k, nullptr, got1.data());
    QMatMul(x.data(), 2, *f, packed.data(), n, k, nullptr, got2.data());
    SetQActivations(QActivations::kF32);
    for (int64_t o = 0; o < n; ++o) {
      if (f == *t1) {
        lut_equal += got1[o] == lut_ref[o];
        a8_equal += got1[o] == a8_ref[o];
      } else {
        w4_a8_equal += got1[o] == a8_ref[o];
      }
    }
    if (f == *t1) {
      for (int64_t i = 0; i < 2 * n; ++i) prefill_a8_equal += got2[i] == a8_ref[i];
    }
  }
  std::printf("[ QMatMulA8 ] a8lut, t1 decode: %d/%lld equal the table reference (%d equal a8); t1 prefill: "
              "%d/%lld equal a8; w4g32 decode: %d/%lld equal a8\n",
              lut_equal, static_cast<long long>(n), a8_equal, prefill_a8_equal, static_cast<long long>(2 * n),
              w4_a8_equal, static_cast<long long>(n));
  EXPECT_EQ(lut_equal, n);
  EXPECT_LT(a8_equal, n / 2) << "t1's table kernel uses blocks of 256, so it must differ from a8";
  EXPECT_EQ(prefill_a8_equal, 2 * n);
  EXPECT_EQ(w4_a8_equal, n);
  for (QActivations a : {QActivations::kF32, QActivations::kInt8, QActivations::kInt8Lut}) {
    QActivations back = QActivations::kF32;
    EXPECT_TRUE(ParseQActivations(QActivationsName(a), &back));
    EXPECT_EQ(back, a);
  }
  QActivations unused;
  EXPECT_FALSE(ParseQActivations("a4", &unused));
}

// Relative output error ‖y − x·ŵ‖ / ‖x·ŵ‖ (ŵ = dequantized weights, f64
// product) of the f32 path (W·A16) and the int8 path (W·A8), per format, on
// activations with outlier channels; also per-row int8 activations (one scale
// per row, simulated) to show why blocks of 32 were chosen, and the weight
// error itself (‖x·ŵ − x·w‖ / ‖x·w‖) for scale. Printed for docs/kernels.md.
TEST(QMatMulA8, AccuracyTableA16VsA8) {
  const int64_t n = 256, m = 8, k = 3072;
  std::printf("[ QMatMulA8 ] relative output error vs x·ŵ (dequantized, f64), n=%lld m=%lld k=%lld\n",
              static_cast<long long>(n), static_cast<long long>(m), static_cast<long long>(k));
  std::printf("| format | outliers | weight error ‖xŵ−xw‖/‖xw‖ | A16 | A8 (blocks of 32) | A8 per-row scale (simulated) | LUT |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (float outlier : {1.0f, 20.0f, 100.0f}) {
    std::mt19937 rng(42);
    std::normal_distribution<float> nd(0.0f, 0.02f);
    std::vector<float> w(static_cast<size_t>(n * k));
    for (float& v : w) v = nd(rng);
    const std::vector<float> x = RandomActivations(rng, m, k, outlier);
    // Per-row int8 activations (one scale per row), dequantized.
    std::vector<float> x_row(x.size());
    for (int64_t r = 0; r < m; ++r) {
      float amax = 0.0f;
      for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(x[r * k + i]));
      for (int64_t i = 0; i < k; ++i) {
        x_row[r * k + i] = std::nearbyint(x[r * k + i] * 127.0f / amax) * (amax / 127.0f);
      }
    }
    const std::vector<double> y_w = MatMulF64(x, m, w, n, k);
    for (const FormatInfo* f : A8Formats()) {
      const std::vector<uint8_t> packed = Quantize(*f, w, n, k);
      const std::vector<float> wq = Dequantize(*f, packed, n, k);
      const std::vector<double> ref = MatMulF64(x, m, wq, n, k);
      const std::vector<double> ref_row = MatMulF64(x_row, m, wq, n, k);
      std::vector<float> a16(m * n), a8(m * n), lut(m * n);
      SetQActivations(QActivations::kF32);
      QMatMul(x.data(), m, *f, packed.data(), n, k, nullptr, a16.data());
      QMatMulA8(x.data(), m, *f, packed.data(), n, k, nullptr, a8.data());
      const bool has_lut = LutSupports(*f, k);
      if (has_lut) QMatMulLut(x.data(), m, *f, packed.data(), n, k, nullptr, lut.data());
      double e16 = 0, e8 = 0, erow = 0, ew = 0, norm = 0, norm_w = 0, elut = 0;
      for (int64_t i = 0; i < m * n; ++i) {
        elut += has_lut ? (lut[i] - ref[i]) * (lut[i] - ref[i]) : 0.0;
        e16 += (a16[i] - ref[i]) * (a16[i] - ref[i]);
        e8 += (a8[i] - ref[i]) * (a8[i] - ref[i]);
        erow += (ref_row[i] - ref[i]) * (ref_row[i] - ref[i]);
        ew += (ref[i] - y_w[i]) * (ref[i] - y_w[i]);
        norm += ref[i] * ref[i];
        norm_w += y_w[i] * y_w[i];
      }
      const double r16 = std::sqrt(e16 / norm), r8 = std::sqrt(e8 / norm), rrow = std::sqrt(erow / norm);
      char lut_cell[64] = "–";
      if (has_lut) {
        std::snprintf(lut_cell, sizeof(lut_cell), "%.2e (blocks of %d)", std::sqrt(elut / norm), LutActivationBlock(*f));
      }
      std::printf("| %s | %s | %.3f | %.1e | %.2e | %.2e | %s |\n", f->name,
                  outlier == 1.0f ? "none" : ("1 % ×" + std::to_string(static_cast<int>(outlier))).c_str(),
                  std::sqrt(ew / norm_w), r16, r8, rrow, lut_cell);
      EXPECT_LT(r16, 1e-5) << f->name;
      EXPECT_LT(r8, 0.03) << f->name << " outlier x" << outlier;
      if (outlier > 1.0f) {
        EXPECT_LT(r8, rrow) << f->name << ": blocks of 32 must beat one scale per row";
      }
    }
  }
}

// End to end: a synthesized tiny LLaVA quantized with the default plan
// (decoder w2g64) gives prompt logits under a8 that differ from a16 (the
// option reaches the model's matmuls) by much less than the quantization
// itself moved them; `bitlens run --activations a8` generates.
TEST(QMatMulA8, QuantizedTinyLlavaLogitsUnderA8StayNearA16) {
  namespace fs = std::filesystem;
  const std::string work = testing::ScratchDir() + "-work";
  const std::string src = work + "/src", qdir = work + "/q";
  fs::remove_all(work);
  auto synth = testing::RunCli("synth --family llava --preset tiny -o " + src);
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  quant::PipelineOptions options;
  options.model_dir = src;
  options.output_dir = qdir;
  options.overwrite = true;
  auto quantized = quant::QuantizeCheckpoint(options);
  ASSERT_TRUE(quantized.ok()) << quantized.status().message();
  auto logits = [](const std::string& dir) {
    auto model = LoadModel(dir);
    EXPECT_TRUE(model.ok()) << model.status().message();
    if (!model.ok()) return std::vector<float>{};
    auto session = Session::Create(**model, SessionOptions{});
    EXPECT_TRUE(session.ok());
    auto ids = (*session)->TokenizePrompt("Describe a red square in detail.", false, ChatMode::kAuto);
    EXPECT_TRUE(ids.ok());
    auto l = (*session)->EvaluateLogits(*ids, nullptr);
    EXPECT_TRUE(l.ok()) << l.status().message();
    return l.ok() ? *l : std::vector<float>{};
  };
  SetQActivations(QActivations::kF32);
  const std::vector<float> a16 = logits(qdir), source = logits(src);
  SetQActivations(QActivations::kInt8);
  const std::vector<float> a8 = logits(qdir);
  SetQActivations(QActivations::kF32);
  ASSERT_FALSE(a16.empty());
  ASSERT_EQ(a16.size(), a8.size());
  ASSERT_EQ(a16.size(), source.size());
  double d8 = 0.0, dq = 0.0, top = 0.0;
  for (size_t i = 0; i < a16.size(); ++i) {
    d8 = std::max(d8, double(std::fabs(a8[i] - a16[i])));
    dq = std::max(dq, double(std::fabs(a16[i] - source[i])));
    top = std::max(top, double(std::fabs(a16[i])));
  }
  std::printf("[ QMatMulA8 ] tiny llava (w2g64 decoder) prompt logits: max |a8 - a16| %.4g, "
              "max |a16 - source| %.4g, max |logit| %.4g\n", d8, dq, top);
  EXPECT_GT(d8, 0.0) << "a8 did not change any logit: the option did not reach the packed matmuls";
  EXPECT_LT(d8, 0.25 * dq) << "int8 activations moved the logits as much as 2-bit weights did";
  auto run = testing::RunCli("run --model " + qdir + " --prompt 'Hello' --max-tokens 3 --activations a8");
  EXPECT_EQ(run.exit_code, 0) << run.err;
  auto bad = testing::RunCli("run --model " + qdir + " --prompt 'Hello' --max-tokens 1 --activations a4");
  EXPECT_NE(bad.exit_code, 0) << "an unknown --activations value must be refused";
  fs::remove_all(work);
}

}  // namespace
}  // namespace bitlens::kernels
