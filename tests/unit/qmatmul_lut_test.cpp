// The lookup-table kernel: its scalar table reference equals the int8-block
// definition (QMatMulInt8BlocksRef, which is QMatMulA8Ref for groups <= 64)
// bit for bit; the Highway kernel equals the table reference bit for bit on
// every target, ragged shape and thread count; and it stays within the int8
// activation rounding bound of the float reference QMatMulRef.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "base/f16.h"
#include "base/thread_pool.h"
#include "kernels/qmatmul_a8.h"
#include "kernels/qmatmul_lut.h"
#include "quant/formats.h"
#include "quant/grid.h"
#include "quant/qmatmul_ref.h"
#include "quant/rtn.h"

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

std::vector<const FormatInfo*> LutFormats() {
  std::vector<const FormatInfo*> out;
  for (const FormatInfo& f : quant::AllFormats()) {
    if (LutSupports(f, 64)) out.push_back(&f);
  }
  return out;
}

struct Problem {
  std::vector<float> x, bias;
  std::vector<uint8_t> packed;
};

// Heavy-tailed weights (all four codes used), activations with 1 % outlier
// channels scaled by 20, bias in [-1, 1).
Problem MakeProblem(std::mt19937& rng, const FormatInfo& f, int64_t m, int64_t n, int64_t k) {
  std::student_t_distribution<float> t(3.0f);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(n * k));
  for (float& v : w) v = 0.02f * t(rng);
  Problem p;
  p.x.resize(static_cast<size_t>(m * k));
  for (float& v : p.x) v = nd(rng);
  for (int64_t c = 0; c < std::max<int64_t>(1, k / 100); ++c) {
    const int64_t j = static_cast<int64_t>(rng() % static_cast<uint32_t>(k));
    for (int64_t r = 0; r < m; ++r) p.x[r * k + j] *= 20.0f;
  }
  p.bias.resize(static_cast<size_t>(n));
  for (float& b : p.bias) b = 0.01f * static_cast<float>(rng() % 200) - 1.0f;
  p.packed.resize(static_cast<size_t>(n) * quant::RowBytes(f, k));
  EXPECT_TRUE(quant::QuantizeRowsRef(f, w.data(), n, k, quant::RangeSearch::kMinMax, p.packed).ok()) << f.name;
  return p;
}

TEST(QMatMulLutRef, CoversTheTwoBitPlaneFormatsAndTernary) {
  std::vector<std::string> names;
  for (const FormatInfo* f : LutFormats()) names.emplace_back(f->name);
  std::string joined;
  for (const std::string& s : names) joined += s + " ";
  std::printf("[ QMatMulLut ] formats with a table kernel: %s\n", joined.c_str());
  for (const char* want : {"w2g32", "w2g64", "w2g128", "w2sg32", "w2sg64", "t1"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
  Result<const FormatInfo*> w4 = quant::FindFormat("w4g32");
  ASSERT_TRUE(w4.ok());
  EXPECT_FALSE(LutSupports(**w4, 64));
  for (const FormatInfo* f : LutFormats()) {
    const int want = std::string_view(f->name) == "t1" ? 256 : f->group_size == 128 ? 64 : 32;
    EXPECT_EQ(LutActivationBlock(*f), want) << f->name;
  }
}

// Same hand-computed block as QMatMulA8Ref.HandComputedW2G32: -231 + 0.25.
TEST(QMatMulLutRef, HandComputedW2G32) {
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
  float y_ref = 0.0f, y_fast = 0.0f;
  QMatMulLutRef(x.data(), 1, **f, packed.data(), 1, 32, &bias, &y_ref);
  QMatMulLut(x.data(), 1, **f, packed.data(), 1, 32, &bias, &y_fast);
  std::printf("[ QMatMulLut ] hand-computed w2g32: table ref %.6f kernel %.6f want -230.75\n", y_ref, y_fast);
  EXPECT_EQ(y_ref, -230.75f);
  EXPECT_EQ(y_fast, -230.75f);
}

TEST(QMatMulLutRef, EqualsInt8BlockDefinitionExactly) {
  std::mt19937 rng(21);
  int64_t checked = 0, bad = 0, bad_a8 = 0, checked_a8 = 0;
  for (const FormatInfo* f : LutFormats()) {
    for (int64_t k : {1, 31, 64, 65, 200, 1000}) {
      for (int64_t n : {1, 7}) {
        const int64_t m = 2;
        const Problem p = MakeProblem(rng, *f, m, n, k);
        std::vector<float> want(m * n), got(m * n), a8(m * n);
        QMatMulInt8BlocksRef(p.x.data(), m, *f, p.packed.data(), n, k, p.bias.data(), want.data(),
                             LutActivationBlock(*f));
        QMatMulLutRef(p.x.data(), m, *f, p.packed.data(), n, k, p.bias.data(), got.data());
        QMatMulA8Ref(p.x.data(), m, *f, p.packed.data(), n, k, p.bias.data(), a8.data());
        for (int64_t i = 0; i < m * n; ++i) {
          ++checked;
          if (!(got[i] == want[i]) && ++bad <= 5) {
            ADD_FAILURE() << f->name << " k=" << k << " n=" << n << " i=" << i << ": table ref " << got[i]
                          << " definition " << want[i];
          }
          if (f->group_size <= 64) {
            ++checked_a8;
            bad_a8 += !(got[i] == a8[i]);
          }
        }
      }
    }
  }
  std::printf("[ QMatMulLut ] table reference vs int8-block definition: %lld of %lld differ; "
              "vs QMatMulA8Ref (groups <= 64): %lld of %lld differ\n",
              static_cast<long long>(bad), static_cast<long long>(checked), static_cast<long long>(bad_a8),
              static_cast<long long>(checked_a8));
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(bad_a8, 0);
}

// The Highway kernel against the table reference: n around the tile sizes
// (16, 32, 64 rows) and the 64-row thread grain, k ragged and across the
// 2048-weight table chunks, m = 1 and 3, threads 1 and 2, every target.
TEST(QMatMulLut, EqualsTableReferenceExactlyAllTargetsRaggedShapes) {
  std::mt19937 rng(8);
  const std::vector<int64_t> ks = {1, 33, 64, 100, 128, 257, 2048, 2049, 4500};
  const std::vector<int64_t> ns = {1, 15, 17, 33, 64, 65, 130};
  int64_t checked = 0, mismatches = 0;
  for (const FormatInfo* f : LutFormats()) {
    for (int64_t k : ks) {
      for (int64_t n : ns) {
        if (k >= 2048 && n > 33) continue;  // keep the sweep quick
        const int64_t m = (k + n) % 3 == 0 ? 3 : 1;
        const Problem p = MakeProblem(rng, *f, m, n, k);
        std::vector<float> want(m * n);
        QMatMulLutRef(p.x.data(), m, *f, p.packed.data(), n, k, p.bias.data(), want.data());
        ForEachTarget([&](const char* target) {
          for (size_t threads : {1, 2}) {
            SetNumThreads(threads);
            std::vector<float> got(m * n, -1e30f);
            QMatMulLut(p.x.data(), m, *f, p.packed.data(), n, k, p.bias.data(), got.data());
            for (int64_t i = 0; i < m * n; ++i) {
              ++checked;
              if (!(got[i] == want[i]) && ++mismatches <= 10) {
                ADD_FAILURE() << f->name << " " << target << " threads=" << threads << " m=" << m << " n=" << n
                              << " k=" << k << " i=" << i << ": got " << got[i] << " want " << want[i];
              }
            }
          }
        });
      }
    }
  }
  SetNumThreads(0);
  std::printf("[ QMatMulLut ] %lld outputs compared over %zu formats, %lld not bit-identical\n",
              static_cast<long long>(checked), LutFormats().size(), static_cast<long long>(mismatches));
  EXPECT_EQ(mismatches, 0);
}

// |LUT − QMatMulRef| <= the int8 rounding of the activations (|x_i − x̂_i| <=
// d/2 + 3.01u|x_i|, times |ŵ_i|) plus both f32 evaluations: the table path's
// chain of at most 2·(blocks per group) + groups + 6 roundings relative to
// M = Σ d·|xq|·(|scale|·q + |offset|), and QMatMulRef's g + k/g + 5
// roundings relative to Σ |x_i|·(|scale|·q_i + |offset|).
TEST(QMatMulLut, WithinActivationRoundingOfQMatMulRef) {
  std::mt19937 rng(4);
  const double u = std::ldexp(1.0, -24);
  for (const FormatInfo* f : LutFormats()) {
    const int64_t n = 24, m = 2, k = 1000;
    const Problem p = MakeProblem(rng, *f, m, n, k);
    std::vector<float> got(m * n), ref(m * n);
    QMatMulLut(p.x.data(), m, *f, p.packed.data(), n, k, nullptr, got.data());
    quant::QMatMulRef(p.x.data(), m, *f, p.packed.data(), n, k, nullptr, ref.data());
    const int block = LutActivationBlock(*f), g = f->group_size;
    const int64_t nb = (k + block - 1) / block, ng = quant::NumGroups(*f, k);
    std::vector<int8_t> xq(nb * block);
    std::vector<float> d(nb), wq(k);
    std::vector<int32_t> bsum(nb);
    std::vector<quant::GroupGrid> grids(ng);
    std::vector<uint8_t> codes(k);
    const double ops_lut = 2.0 * (g / block) + ng + 6, ops_ref = g + k / g + 5;
    const size_t rb = quant::RowBytes(*f, k);
    double worst = 0.0;
    for (int64_t r = 0; r < m; ++r) {
      const float* xr = p.x.data() + r * k;
      QuantizeActivationBlocksRef(xr, k, block, xq.data(), d.data(), bsum.data());
      for (int64_t o = 0; o < n; ++o) {
        quant::DecodeRow(*f, p.packed.data() + o * rb, k, grids.data(), codes.data());
        double act = 0.0, mag_lut = 0.0, mag_ref = 0.0;
        for (int64_t i = 0; i < k; ++i) {
          const quant::GroupGrid& gr = grids[i / g];
          const double wmag = std::fabs(gr.scale) * codes[i] + std::fabs(gr.offset);
          const double wi = std::fabs(gr.offset + double(gr.scale) * codes[i]);
          const double db = d[i / block], xi = std::fabs(double(xr[i]));
          act += wi * (db / 2.0 + 3.01 * u * xi);
          mag_lut += db * std::abs(int(xq[i])) * wmag;
          mag_ref += xi * wmag;
        }
        const double tol = act + ops_lut * u * mag_lut + ops_ref * u * mag_ref;
        const double diff = std::fabs(double(got[r * n + o]) - ref[r * n + o]);
        worst = std::max(worst, diff / tol);
        ASSERT_LE(diff, tol) << f->name << " r=" << r << " o=" << o << ": lut " << got[r * n + o] << " QMatMulRef "
                             << ref[r * n + o] << " activation bound " << act;
      }
    }
    std::printf("[ QMatMulLut ] %-7s worst |LUT − QMatMulRef| / bound %.3f (activation block %d)\n", f->name, worst,
                block);
  }
}

}  // namespace
}  // namespace bitlens::kernels
