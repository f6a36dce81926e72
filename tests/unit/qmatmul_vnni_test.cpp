// The AVX-512 VNNI kernel of the W2A8 path: bit-identical to QMatMulA8Ref for
// its seven formats on ragged shapes (k, n around the 16-row tile and the
// 64/128/256-weight blocks), m from 1 to 19, threads 1 and 2, with and
// without bias; and QMatMulA8 giving the same result on every x86 target this
// CPU runs (AVX3_DL takes the VNNI kernel, the others the portable one).
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "base/thread_pool.h"
#include "kernels/qmatmul_a8.h"
#include "kernels/qmatmul_vnni.h"
#include "quant/formats.h"
#include "quant/rtn.h"

namespace bitlens::kernels {
namespace {

using quant::FormatInfo;

const char* const kVnniFormats[] = {"w2g64", "w2g128", "w2sg64", "w2g32dq", "w2g64dq", "w4g32", "w4g64"};

std::vector<uint8_t> Quantize(const FormatInfo& f, const std::vector<float>& w, int64_t n, int64_t k) {
  std::vector<uint8_t> packed(static_cast<size_t>(n) * quant::RowBytes(f, k));
  EXPECT_TRUE(quant::QuantizeRowsRef(f, w.data(), n, k, quant::RangeSearch::kMinMax, packed).ok()) << f.name;
  return packed;
}

// Heavy-tailed weights (codes use their whole range) and unit-normal
// activations with 1 % outlier channels scaled by 20.
std::vector<float> RandomWeights(std::mt19937& rng, int64_t count) {
  std::student_t_distribution<float> t(3.0f);
  std::vector<float> w(static_cast<size_t>(count));
  for (float& v : w) v = 0.02f * t(rng);
  return w;
}
std::vector<float> RandomActivations(std::mt19937& rng, int64_t m, int64_t k) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m * k));
  for (float& v : x) v = nd(rng);
  for (int64_t c = 0; c < std::max<int64_t>(1, k / 100); ++c) {
    const int64_t j = static_cast<int64_t>(rng() % static_cast<uint32_t>(k));
    for (int64_t r = 0; r < m; ++r) x[r * k + j] *= 20.0f;
  }
  return x;
}

// The x86 targets this CPU runs (the VNNI file compiles AVX3_DL too, so it is
// listed here rather than taken from this file's Highway target set).
std::vector<int64_t> X86Targets() {
  hwy::SetSupportedTargetsForTest(0);
  const int64_t supported = hwy::SupportedTargets();
  std::vector<int64_t> out;
#if HWY_ARCH_X86
  for (int64_t t : {HWY_AVX3_DL, HWY_AVX3, HWY_AVX2, HWY_SSE4, HWY_SSSE3}) {
    if (supported & t) out.push_back(t);
  }
#endif
  return out;
}

TEST(QMatMulVnni, SupportsThePlaneFormatsOnly) {
  for (const FormatInfo& f : quant::AllFormats()) {
    const std::string name = f.name;
    bool want = false;
    for (const char* v : kVnniFormats) want |= name == v;
    EXPECT_EQ(VnniSupports(f, 3072), want) << name;
  }
  Result<const FormatInfo*> f = quant::FindFormat("w2g64");
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(VnniSupports(**f, 0));
  EXPECT_FALSE(VnniSupports(**f, kA8MaxK + 1));
  std::printf("[ QMatMulVnni ] kernel available on this CPU: %s\n", VnniAvailable() ? "yes" : "no");
}

// Bit-exact against QMatMulA8Ref: every VNNI format, ragged k (inside the
// first block, at block and super-block edges, long rows) and n (around the
// 16-row tile), m 1, 2, 3 (a pair of x rows and a single) and 19 (three
// quantized blocks of 8 rows), threads 1 and 2, with and without bias.
TEST(QMatMulVnni, EqualsReferenceExactlyRaggedShapes) {
  if (!VnniAvailable()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  std::mt19937 rng(17);
  const std::vector<int64_t> ks = {1, 5, 20, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 200, 255, 256, 257, 300, 520, 1000, 3072};
  const std::vector<int64_t> ns = {1, 3, 15, 16, 17, 33, 50};
  const std::vector<int64_t> ms = {1, 2, 3, 19};
  int64_t checked = 0, mismatches = 0, case_index = 0;
  for (const char* name : kVnniFormats) {
    Result<const FormatInfo*> f = quant::FindFormat(name);
    ASSERT_TRUE(f.ok());
    for (int64_t k : ks) {
      for (int64_t n : ns) {
        const int64_t m = ms[static_cast<size_t>(case_index++) % ms.size()];
        const std::vector<float> w = RandomWeights(rng, n * k);
        const std::vector<float> x = RandomActivations(rng, m, k);
        std::vector<float> bias(static_cast<size_t>(n));
        for (float& b : bias) b = 0.01f * static_cast<float>(rng() % 200) - 1.0f;
        const std::vector<uint8_t> packed = Quantize(**f, w, n, k);
        for (bool with_bias : {false, true}) {
          const float* bp = with_bias ? bias.data() : nullptr;
          std::vector<float> want(static_cast<size_t>(m * n));
          QMatMulA8Ref(x.data(), m, **f, packed.data(), n, k, bp, want.data());
          for (size_t threads : {1, 2}) {
            SetNumThreads(threads);
            std::vector<float> got(static_cast<size_t>(m * n), -1e30f);
            ASSERT_TRUE(QMatMulVnni(x.data(), m, **f, packed.data(), n, k, bp, got.data()));
            for (int64_t i = 0; i < m * n; ++i) {
              ++checked;
              if (!(got[i] == want[i]) && ++mismatches <= 10) {
                ADD_FAILURE() << name << " threads=" << threads << " m=" << m << " n=" << n << " k=" << k
                              << " bias=" << with_bias << " i=" << i << ": got " << got[i] << " want " << want[i];
              }
            }
          }
        }
      }
    }
  }
  SetNumThreads(0);
  std::printf("[ QMatMulVnni ] %lld outputs compared, %lld not bit-identical\n", static_cast<long long>(checked),
              static_cast<long long>(mismatches));
  EXPECT_EQ(mismatches, 0);
}

// The longest rows the int8 path takes (k = kA8MaxK, one quantized row per
// block) and a ragged k just below it.
TEST(QMatMulVnni, EqualsReferenceExactlyAtMaxK) {
  if (!VnniAvailable()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  std::mt19937 rng(23);
  for (const char* name : {"w2g64", "w2g32dq"}) {
    Result<const FormatInfo*> f = quant::FindFormat(name);
    ASSERT_TRUE(f.ok());
    for (int64_t k : {kA8MaxK, kA8MaxK - 3}) {
      const int64_t n = 17, m = 2;
      const std::vector<float> w = RandomWeights(rng, n * k);
      const std::vector<float> x = RandomActivations(rng, m, k);
      const std::vector<uint8_t> packed = Quantize(**f, w, n, k);
      std::vector<float> want(static_cast<size_t>(m * n)), got(static_cast<size_t>(m * n));
      QMatMulA8Ref(x.data(), m, **f, packed.data(), n, k, nullptr, want.data());
      ASSERT_TRUE(QMatMulVnni(x.data(), m, **f, packed.data(), n, k, nullptr, got.data()));
      int bad = 0;
      for (int64_t i = 0; i < m * n; ++i) bad += !(got[i] == want[i]);
      std::printf("[ QMatMulVnni ] %-7s k=%lld: %d of %lld outputs differ (y[0] %.6f vs %.6f)\n", name,
                  static_cast<long long>(k), bad, static_cast<long long>(m * n), got[0], want[0]);
      EXPECT_EQ(bad, 0) << name << " k=" << k;
    }
  }
}

// QMatMulA8 (which takes the VNNI kernel where it runs) equals the reference
// on every x86 target of this CPU; only AVX3_DL reports the kernel available.
TEST(QMatMulVnni, QMatMulA8EqualsReferenceOnEveryTarget) {
  std::mt19937 rng(29);
  const std::vector<int64_t> targets = X86Targets();
  if (targets.empty()) GTEST_SKIP() << "not an x86 CPU";
  int64_t mismatches = 0;
  for (const char* name : kVnniFormats) {
    Result<const FormatInfo*> f = quant::FindFormat(name);
    ASSERT_TRUE(f.ok());
    const int64_t n = 37, k = 449, m = 1;
    const std::vector<float> w = RandomWeights(rng, n * k);
    const std::vector<float> x = RandomActivations(rng, m, k);
    const std::vector<uint8_t> packed = Quantize(**f, w, n, k);
    std::vector<float> want(static_cast<size_t>(m * n));
    QMatMulA8Ref(x.data(), m, **f, packed.data(), n, k, nullptr, want.data());
    for (int64_t target : targets) {
      hwy::SetSupportedTargetsForTest(target);
      const bool has = VnniAvailable();
      EXPECT_EQ(has, target == HWY_AVX3_DL) << hwy::TargetName(target);
      for (size_t threads : {1, 2}) {
        SetNumThreads(threads);
        std::vector<float> got(static_cast<size_t>(m * n), -1e30f);
        QMatMulA8(x.data(), m, **f, packed.data(), n, k, nullptr, got.data());
        for (int64_t i = 0; i < m * n; ++i) {
          if (!(got[i] == want[i]) && ++mismatches <= 10) {
            ADD_FAILURE() << name << " " << hwy::TargetName(target) << " threads=" << threads << " i=" << i
                          << ": got " << got[i] << " want " << want[i];
          }
        }
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  SetNumThreads(0);
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace bitlens::kernels
