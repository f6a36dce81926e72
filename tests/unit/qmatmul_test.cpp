// kernels::QMatMul (the W·A16 SIMD kernels and the driver) against the scalar
// reference quant::QMatMulRef: every format of the table, every Highway target
// this CPU runs, threads 1 and 2, ragged shapes; plus thread-count
// determinism and the reference fallback for formats without a kernel.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/f16.h"
#include "base/thread_pool.h"
#include "hwy/highway.h"
#include "hwy/targets.h"
#include "kernels/qmatmul.h"
#include "quant/formats.h"
#include "quant/grid.h"
#include "quant/grid.h"
#include "quant/qmatmul_ref.h"
#include "quant/rtn.h"

namespace bitlens::kernels {
namespace {

using quant::FormatInfo;
using quant::ScaleEncoding;

struct ThreadsGuard {
  ~ThreadsGuard() { SetNumThreads(0); }
};

// Runs check once per Highway target compiled in and supported here, so the
// narrower paths (AVX2, SSE4, scalar) a phone or older PC picks are tested too.
void ForEachTarget(void (*check)(const char*)) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    check(hwy::TargetName(target));
  }
  hwy::SetSupportedTargetsForTest(0);
}

double Gamma(int64_t ops) {
  const double u = std::ldexp(1.0, -24);
  return ops * u / (1.0 - ops * u);
}

// T = Σ_i |x_i| · m_i, where m_i bounds the magnitude of every intermediate
// either implementation forms for weight i: for grid formats |scale|·qmax +
// |offset| of its group's grid (quant/grid.h; the reference forms scale·Σx·c
// and offset·Σx, the kernel offset + scale·c), for w8 and f16/bf16 |w_i| (both
// multiply x by the code or value directly). Only i < k counts (a partial
// last block holds zero codes past k).
double TermBound(const FormatInfo& f, const uint8_t* row, const float* x, const float* wq, int64_t k) {
  double t = 0.0;
  if (f.encoding == ScaleEncoding::kNone || f.encoding == ScaleEncoding::kF32ScalePerRow) {
    for (int64_t i = 0; i < k; ++i) t += std::fabs(double(x[i]) * wq[i]);
    return t;
  }
  std::vector<quant::GroupGrid> grids(static_cast<size_t>(quant::NumGroups(f, k)));
  std::vector<uint8_t> codes(static_cast<size_t>(k));
  quant::DecodeRow(f, row, k, grids.data(), codes.data());
  const int64_t g = f.group_size > 0 ? f.group_size : k;
  const double qmax = quant::QMax(f);
  for (int64_t i = 0; i < k; ++i) {
    const quant::GroupGrid& grid = grids[static_cast<size_t>(i / g)];
    t += std::fabs(double(x[i])) * (std::fabs(double(grid.scale)) * qmax + std::fabs(double(grid.offset)));
  }
  return t;
}

struct Case {
  std::vector<float> x, bias, wq;
  std::vector<uint8_t> packed;
};

Case MakeCase(const FormatInfo& f, int64_t m, int64_t n, int64_t k, std::mt19937& rng) {
  std::normal_distribution<float> wd(0.0f, 0.02f), xd(0.0f, 1.0f);
  Case c;
  std::vector<float> w(static_cast<size_t>(n * k));
  for (float& v : w) v = wd(rng);
  // A few outliers so some groups have wide grids.
  for (int64_t o = 0; o < n; o += 3) w[static_cast<size_t>(o * k + (o * 7) % k)] = 0.5f;
  c.x.resize(static_cast<size_t>(m * k));
  for (float& v : c.x) v = xd(rng);
  c.bias.resize(static_cast<size_t>(n));
  for (float& v : c.bias) v = 0.1f * xd(rng);
  c.packed.resize(static_cast<size_t>(n) * quant::RowBytes(f, k));
  EXPECT_TRUE(quant::QuantizeRowsRef(f, w.data(), n, k, quant::RangeSearch::kMinMax, c.packed).ok());
  c.wq.resize(w.size());
  EXPECT_TRUE(quant::DequantizeRowsRef(f, c.packed, n, k, c.wq.data()).ok());
  return c;
}

// Tolerance: both results approximate the exact E = Σ x_i·w_i + bias. Each
// is a sum of the k products and the bias in some order with at most k + 16
// f32 roundings along any term's path (reference: the group chain, the
// scale/min products and their add, the group adds, the bias; kernel: the
// weight's multiply-add, the lane chain, four accumulator adds, log2(16)
// lane-sum adds, the scalar tail, the w8 scale, the bias), so each is within
// γ_{k+16}·(T + |bias|) of E (Higham, Accuracy and Stability, §3.1) and they
// are within twice that of each other. A wrong or dropped code moves y by
// ≈ |x_i|·scale, about T/k.
void CheckShape(const FormatInfo& f, int64_t m, int64_t n, int64_t k, bool use_bias, std::mt19937& rng,
                double* worst_ratio) {
  const Case c = MakeCase(f, m, n, k, rng);
  const float* bias = use_bias ? c.bias.data() : nullptr;
  std::vector<float> want(static_cast<size_t>(m * n)), got(want.size(), NAN);
  quant::QMatMulRef(c.x.data(), m, f, c.packed.data(), n, k, bias, want.data());
  QMatMul(c.x.data(), m, f, c.packed.data(), n, k, bias, got.data());
  const size_t rb = quant::RowBytes(f, k);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t o = 0; o < n; ++o) {
      const double t = TermBound(f, c.packed.data() + o * rb, c.x.data() + r * k, c.wq.data() + o * k, k) +
                       (use_bias ? std::fabs(c.bias[o]) : 0.0);
      const double tol = 2.0 * Gamma(k + 16) * t + 1e-30;
      const double diff = std::fabs(double(got[r * n + o]) - want[r * n + o]);
      *worst_ratio = std::max(*worst_ratio, diff / tol);
      ASSERT_LE(diff, tol) << f.name << " m=" << m << " n=" << n << " k=" << k << " threads=" << NumThreads()
                           << " y[" << r << "," << o << "] got " << got[r * n + o] << " want " << want[r * n + o]
                           << " |diff| " << diff << " tol " << tol << " (T " << t << ")";
    }
  }
}

// k values: block multiples and ragged ones; those a format does not accept
// (CheckRowLength) are skipped.
constexpr int64_t kKs[] = {1, 5, 31, 32, 33, 64, 96, 100, 128, 192, 255, 256, 320, 384, 449, 640};
constexpr int64_t kNs[] = {1, 2, 5, 16, 17, 33, 50};
constexpr int64_t kMs[] = {1, 2, 3, 7, 17};

void EveryFormatMatchesReference(const char* target) {
  ThreadsGuard guard;
  for (size_t threads : {1, 2}) {
    SetNumThreads(threads);
    for (const FormatInfo& f : quant::AllFormats()) {
      std::mt19937 rng(7 + threads);
      double worst = 0.0;
      int shapes = 0;
      for (int64_t k : kKs) {
        if (!quant::CheckRowLength(f, k).ok()) continue;
        for (int64_t m : kMs) {
          const int64_t n = kNs[rng() % std::size(kNs)];
          CheckShape(f, m, n, k, (m + n) % 2 == 0, rng, &worst);
          ++shapes;
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
      EXPECT_GT(shapes, 0) << f.name;
      std::printf("[%s] QMatMul %-7s threads=%zu: %d shapes, worst diff/tol %.2e\n", target, f.name, threads,
                  shapes, worst);
    }
  }
}

// Prefill large enough to take several x blocks (k = 4096: 16 rows per block).
void PrefillBlocksMatchReference(const char* target) {
  ThreadsGuard guard;
  for (size_t threads : {1, 2}) {
    SetNumThreads(threads);
    for (const FormatInfo& f : quant::AllFormats()) {
      std::mt19937 rng(99);
      double worst = 0.0;
      CheckShape(f, 37, 19, 4096, true, rng, &worst);
      if (::testing::Test::HasFatalFailure()) return;
      std::printf("[%s] QMatMul %-7s threads=%zu m=37 n=19 k=4096: worst diff/tol %.2e\n", target, f.name, threads,
                  worst);
    }
  }
}

void ResultsDoNotDependOnThreadCount(const char* target) {
  ThreadsGuard guard;
  for (const FormatInfo& f : quant::AllFormats()) {
    std::mt19937 rng(5);
    for (int64_t m : {1, 5}) {
      const int64_t n = 67, k = 512;
      const Case c = MakeCase(f, m, n, k, rng);
      std::vector<float> y1(static_cast<size_t>(m * n)), y2(y1.size(), NAN), y3(y1.size(), NAN);
      SetNumThreads(1);
      QMatMul(c.x.data(), m, f, c.packed.data(), n, k, c.bias.data(), y1.data());
      SetNumThreads(2);
      QMatMul(c.x.data(), m, f, c.packed.data(), n, k, c.bias.data(), y2.data());
      QMatMul(c.x.data(), m, f, c.packed.data(), n, k, c.bias.data(), y3.data());
      for (size_t i = 0; i < y1.size(); ++i) {
        ASSERT_EQ(y1[i], y2[i]) << target << " " << f.name << " m=" << m << " y[" << i << "] 1 vs 2 threads";
        ASSERT_EQ(y2[i], y3[i]) << target << " " << f.name << " m=" << m << " y[" << i << "] repeated call";
      }
    }
  }
}

TEST(QMatMulFast, EveryFormatMatchesReferenceRaggedShapes) { ForEachTarget(EveryFormatMatchesReference); }
TEST(QMatMulFast, PrefillBlocksMatchReference) { ForEachTarget(PrefillBlocksMatchReference); }
TEST(QMatMulFast, ResultsDoNotDependOnThreadCount) { ForEachTarget(ResultsDoNotDependOnThreadCount); }

// The formats that must not silently fall back to the reference loop.
TEST(QMatMulFast, KernelsCoverTheTableFormats) {
  for (const char* name : {"w2g32", "w2g64", "w2g128", "w2sg32", "w2sg64", "w2g32dq", "w2g64dq", "w3g32", "w3g64",
                           "t1", "w4g32", "w4g64", "w8", "f16", "bf16"}) {
    Result<const FormatInfo*> f = quant::FindFormat(name);
    ASSERT_TRUE(f.ok()) << name;
    EXPECT_TRUE(QMatMulHasFastPath(**f)) << name << " has no SIMD path";
  }
}

// A format QMatMul has no kernel for (here a renamed copy of w2g64, as a new
// table entry would be) runs the table's vec_dot_ref: the reference result,
// bit for bit, at any thread count.
TEST(QMatMulFallback, FormatWithoutKernelGivesReferenceResult) {
  ThreadsGuard guard;
  Result<const FormatInfo*> base = quant::FindFormat("w2g64");
  ASSERT_TRUE(base.ok());
  FormatInfo unknown = **base;
  unknown.name = "w2g64-no-kernel";
  ASSERT_FALSE(QMatMulHasFastPath(unknown));
  std::mt19937 rng(11);
  for (size_t threads : {1, 2}) {
    SetNumThreads(threads);
    for (int64_t m : {1, 3}) {
      const int64_t n = 21, k = 256;
      const Case c = MakeCase(unknown, m, n, k, rng);
      std::vector<float> want(static_cast<size_t>(m * n)), got(want.size(), NAN);
      quant::QMatMulRef(c.x.data(), m, unknown, c.packed.data(), n, k, c.bias.data(), want.data());
      QMatMul(c.x.data(), m, unknown, c.packed.data(), n, k, c.bias.data(), got.data());
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_EQ(got[i], want[i]) << "threads=" << threads << " m=" << m << " y[" << i << "]";
      }
    }
  }
}

// m = 0 or n = 0 writes nothing.
TEST(QMatMulFast, EmptyShapesWriteNothing) {
  Result<const FormatInfo*> f = quant::FindFormat("w2g64");
  ASSERT_TRUE(f.ok());
  std::vector<uint8_t> packed(quant::RowBytes(**f, 64), 0);
  std::vector<float> x(64, 1.0f);
  float y = 123.0f;
  QMatMul(x.data(), 0, **f, packed.data(), 1, 64, nullptr, &y);
  QMatMul(x.data(), 1, **f, packed.data(), 0, 64, nullptr, &y);
  EXPECT_EQ(y, 123.0f);
}

}  // namespace
}  // namespace bitlens::kernels
