// quant/grid, the algorithms' view of every format: choosing grids and codes
// reproduces the reference quantizer's bytes, DecodeRow inverts EncodeRow,
// GridValue equals the reference dequantization, NearestCode is the nearest.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "base/f16.h"
#include "quant/formats.h"
#include "quant/grid.h"
#include "quant/rtn.h"

namespace bitlens::quant {
namespace {

std::vector<float> MixedWeights(int64_t count, uint32_t seed) {
  // Normal weights with a few heavy-tailed ones, and one all-positive stretch
  // so that groups with a positive minimum occur.
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::student_t_distribution<float> t(2.0f);
  std::vector<float> w(static_cast<size_t>(count));
  for (size_t i = 0; i < w.size(); ++i) w[i] = i % 17 == 0 ? 0.01f * t(rng) : d(rng);
  for (size_t i = 0; i < std::min<size_t>(w.size(), 300); ++i) w[i] = std::fabs(w[i]) + 0.01f;
  return w;
}

std::vector<const FormatInfo*> GridFormats() {
  std::vector<const FormatInfo*> out;
  for (const FormatInfo& f : AllFormats()) {
    if (HasGrid(f)) out.push_back(&f);
  }
  return out;
}

// Whole blocks and ragged rows (a partial last block).
std::vector<int64_t> RowLengths(const FormatInfo&) { return {1, 31, 33, 100, 256, 1000, 4096, 4304}; }

TEST(QuantGrid, TableFacts) {
  for (const FormatInfo& f : AllFormats()) {
    const std::string name = f.name;
    EXPECT_EQ(HasGrid(f), name != "f16" && name != "bf16") << name;
    if (!HasGrid(f)) {
      EXPECT_EQ(NumGroups(f, 4096), 0) << name;
      continue;
    }
    const int want_qmax = name == "w8" ? 254 : name == "t1" ? 2 : (1 << f.bits) - 1;
    EXPECT_EQ(QMax(f), want_qmax) << name;
    const int64_t want_groups = f.group_size == 0 ? 1 : 4096 / f.group_size;
    EXPECT_EQ(NumGroups(f, 4096), want_groups) << name;
    if (f.group_size > 0) {
      EXPECT_EQ(NumGroups(f, 4096 + 1), want_groups + 1) << name << ": a partial last group counts";
    }
  }
}

TEST(QuantGrid, ChooseNearestEncodeGivesTheReferenceBytes) {
  const int64_t n = 3;
  for (const FormatInfo* f : GridFormats()) {
    for (int64_t k : RowLengths(*f)) {
      const std::vector<float> w = MixedWeights(n * k, 31);
      for (RangeSearch search : {RangeSearch::kMinMax, RangeSearch::kMseClip}) {
        std::vector<uint8_t> want(n * RowBytes(*f, k));
        ASSERT_TRUE(QuantizeRowsRef(*f, w.data(), n, k, search, want).ok()) << f->name;
        std::vector<uint8_t> got(want.size(), 0xa5);
        std::vector<GroupGrid> grids(NumGroups(*f, k));
        std::vector<uint8_t> codes(k);
        const int64_t g = f->group_size > 0 ? f->group_size : k;
        for (int64_t r = 0; r < n; ++r) {
          const float* wr = w.data() + r * k;
          ChooseRowGrids(*f, wr, k, search, grids.data());
          for (int64_t i = 0; i < k; ++i) codes[i] = NearestCode(grids[i / g], QMax(*f), wr[i]);
          EncodeRow(*f, grids.data(), codes.data(), k, got.data() + r * RowBytes(*f, k));
        }
        size_t first_diff = want.size();
        for (size_t i = 0; i < want.size() && first_diff == want.size(); ++i) {
          if (want[i] != got[i]) first_diff = i;
        }
        EXPECT_EQ(first_diff, want.size())
            << f->name << " k=" << k << " search=" << int(search) << ": byte " << first_diff
            << " is " << int(got[first_diff % got.size()]) << ", reference "
            << int(want[first_diff % want.size()]);
      }
    }
  }
}

// The same bytes from a transcription of docs/quantization.md that shares no
// code with the library: per group scale = f16((hi − lo) / qmax), min =
// f16(lo), code = nearest, packed into the documented planes.
TEST(QuantGrid, MinMaxBytesMatchTheDocumentedRecipe) {
  for (const char* name : {"w2g64", "w4g32", "w2g128"}) {
    const FormatInfo& f = **FindFormat(name);
    const int64_t k = 1000;  // ragged for all three
    const std::vector<float> w = MixedWeights(k, 71);
    std::vector<uint8_t> got(RowBytes(f, k));
    ASSERT_TRUE(QuantizeRowsRef(f, w.data(), 1, k, RangeSearch::kMinMax, got).ok());
    std::vector<uint8_t> want(got.size(), 0);
    const int g = f.group_size, qmax = (1 << f.bits) - 1, plane = g * f.bits / 8;
    for (int64_t g0 = 0, b = 0; g0 < k; g0 += g, ++b) {
      const int64_t len = std::min<int64_t>(g, k - g0);
      const float lo = *std::min_element(w.begin() + g0, w.begin() + g0 + len);
      const float hi = *std::max_element(w.begin() + g0, w.begin() + g0 + len);
      const uint16_t s16 = F32ToF16((hi - lo) / qmax), m16 = F32ToF16(lo);
      uint8_t* block = want.data() + b * f.block_bytes;
      std::memcpy(block, &s16, 2);
      std::memcpy(block + 2, &m16, 2);
      const double scale = F16ToF32(s16), min = F16ToF32(m16);
      for (int64_t i = 0; i < len; ++i) {
        const int q = int(std::clamp(std::floor((w[g0 + i] - min) / scale + 0.5), 0.0, double(qmax)));
        block[4 + i % plane] |= static_cast<uint8_t>(q << (f.bits * (i / plane)));
      }
    }
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_EQ(int(got[i]), int(want[i])) << name << " byte " << i << " of " << want.size();
    }
  }
}

TEST(QuantGrid, DecodeRowInvertsEncodeRow) {
  std::mt19937 rng(77);
  for (const FormatInfo* f : GridFormats()) {
    for (int64_t k : RowLengths(*f)) {
      const std::vector<float> w = MixedWeights(k, 41);
      std::vector<GroupGrid> grids(NumGroups(*f, k)), back(grids.size());
      ChooseRowGrids(*f, w.data(), k, RangeSearch::kMseClip, grids.data());
      // Arbitrary codes, not only the nearest ones: every code must survive.
      std::vector<uint8_t> codes(k), codes_back(k, 0xee);
      for (uint8_t& c : codes) c = static_cast<uint8_t>(rng() % (QMax(*f) + 1));
      std::vector<uint8_t> row(RowBytes(*f, k));
      EncodeRow(*f, grids.data(), codes.data(), k, row.data());
      DecodeRow(*f, row.data(), k, back.data(), codes_back.data());
      for (int64_t i = 0; i < k; ++i) {
        ASSERT_EQ(codes_back[i], codes[i]) << f->name << " k=" << k << " weight " << i;
      }
      for (size_t b = 0; b < grids.size(); ++b) {
        ASSERT_EQ(back[b].scale, grids[b].scale) << f->name << " k=" << k << " group " << b;
        ASSERT_EQ(back[b].offset, grids[b].offset) << f->name << " k=" << k << " group " << b;
      }
    }
  }
}

TEST(QuantGrid, GridValueEqualsReferenceDequantization) {
  const int64_t n = 2;
  for (const FormatInfo* f : GridFormats()) {
    double worst_ulps = 0.0;
    for (int64_t k : RowLengths(*f)) {
      const std::vector<float> w = MixedWeights(n * k, 51);
      std::vector<uint8_t> packed(n * RowBytes(*f, k));
      ASSERT_TRUE(QuantizeRowsRef(*f, w.data(), n, k, RangeSearch::kMseClip, packed).ok());
      std::vector<float> dq(n * k);
      ASSERT_TRUE(DequantizeRowsRef(*f, packed, n, k, dq.data()).ok());
      std::vector<GroupGrid> grids(NumGroups(*f, k));
      std::vector<uint8_t> codes(k);
      const int64_t g = f->group_size > 0 ? f->group_size : k;
      for (int64_t r = 0; r < n; ++r) {
        DecodeRow(*f, packed.data() + r * RowBytes(*f, k), k, grids.data(), codes.data());
        for (int64_t i = 0; i < k; ++i) {
          const GroupGrid& gr = grids[i / g];
          const float got = GridValue(gr, codes[i]), want = dq[r * k + i];
          // Both sides are a few f32 roundings of the same value: allow two
          // ulps of the grid's largest magnitude.
          const double mag = std::fabs(gr.offset) + std::fabs(gr.scale) * QMax(*f);
          const double ulp = std::ldexp(mag, -23);
          const double diff = std::fabs(double(got) - want);
          worst_ulps = std::max(worst_ulps, ulp > 0 ? diff / ulp : diff);
          ASSERT_LE(diff, 2 * ulp) << f->name << " k=" << k << " [" << r << ", " << i
                                   << "]: GridValue " << got << ", dequantized " << want;
        }
      }
    }
    std::printf("%-8s worst |GridValue - dequantized| = %.2f ulp of the grid span\n", f->name,
                worst_ulps);
  }
}

TEST(QuantGrid, NearestCodeIsTheNearestGridPoint) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (const FormatInfo* f : GridFormats()) {
    const int qmax = QMax(*f);
    for (int trial = 0; trial < 2000; ++trial) {
      GroupGrid g{0.01f + std::fabs(u(rng)) * 0.2f, u(rng)};
      const float w = u(rng) * 3.0f;
      const int c = NearestCode(g, qmax, w);
      ASSERT_GE(c, 0);
      ASSERT_LE(c, qmax);
      const double err = std::fabs(double(w) - GridValue(g, c));
      for (int other : {c - 1, c + 1}) {
        if (other < 0 || other > qmax) continue;
        // Nearest up to the f32 rounding of GridValue itself.
        const double other_err = std::fabs(double(w) - GridValue(g, other));
        ASSERT_LE(err, other_err + 1e-6) << f->name << " w=" << w << " scale=" << g.scale
                                         << " offset=" << g.offset << ": code " << c
                                         << " but " << other << " is nearer";
      }
    }
  }
  // Ties go away from zero (up, for a non-negative code); out of range clamps.
  const GroupGrid g{0.5f, -1.0f};
  EXPECT_EQ(NearestCode(g, 3, -0.25f), 2);  // halfway between codes 1 and 2
  EXPECT_EQ(NearestCode(g, 3, -0.75f), 1);  // halfway between codes 0 and 1
  EXPECT_EQ(NearestCode(g, 3, -5.0f), 0);
  EXPECT_EQ(NearestCode(g, 3, 5.0f), 3);
  EXPECT_EQ(NearestCode(GroupGrid{0.0f, 0.0f}, 3, 1.0f), 0);  // a constant group
}

// Ragged k: the partial last block is stored whole with codes 0 past k, and
// its grid comes from the valid weights only (here all positive, so padding
// zeros would drag an asymmetric grid's offset down to 0).
TEST(QuantGrid, RaggedRowPadsWithZeroCodesAndIgnoresThePadding) {
  for (const FormatInfo* f : GridFormats()) {
    if (f->group_size == 0) continue;  // per-row grids have no padding
    const int64_t k = 2 * f->block_weights + 3;
    const int64_t k_whole = 3 * f->block_weights;
    std::vector<float> w = MixedWeights(k, 61);
    const float top = 1.0f + 0.125f * QMax(*f);  // exact grid: scale 1/8 from offset 1
    w[k - 3] = 1.0f, w[k - 2] = top, w[k - 1] = 1.25f;
    std::vector<uint8_t> row(RowBytes(*f, k), 0xff);
    ASSERT_EQ(row.size(), RowBytes(*f, k_whole)) << f->name;
    ASSERT_TRUE(QuantizeRowsRef(*f, w.data(), 1, k, RangeSearch::kMinMax, row).ok()) << f->name;
    std::vector<GroupGrid> grids(NumGroups(*f, k_whole));
    std::vector<uint8_t> codes(k_whole, 0xee);
    DecodeRow(*f, row.data(), k_whole, grids.data(), codes.data());
    for (int64_t i = k; i < k_whole; ++i) {
      ASSERT_EQ(codes[i], 0) << f->name << ": padding code " << i << " of k=" << k;
    }
    if (f->encoding == ScaleEncoding::kF16ScaleMin) {
      const GroupGrid& last = grids[NumGroups(*f, k) - 1];
      EXPECT_EQ(last.offset, 1.0f) << f->name << ": last group's grid saw the padding";
      EXPECT_EQ(GridValue(last, QMax(*f)), top) << f->name;
    }
  }
}

TEST(QuantGrid, RoundRowGridsGivesWhatTheFormatStores) {
  std::mt19937 rng(9);
  std::normal_distribution<float> d(0.0f, 0.05f);
  std::uniform_real_distribution<float> e(-12.0f, 4.0f);
  for (const FormatInfo* f : GridFormats()) {
   for (int family = 0; family < 3; ++family) {
    for (int64_t k : RowLengths(*f)) {
      // Float proposals (as HQQ would make them) -> rounded -> encoded ->
      // decoded must give the rounded grids back, and rounding again is a
      // no-op. Families: typical; mins all near -40 with tiny spread (the
      // min codes' step far below the mins' f32 ulp); magnitudes from 2^-12 to 2^4.
      std::vector<GroupGrid> grids(NumGroups(*f, k));
      for (GroupGrid& g : grids) {
        if (family == 0) g = {std::fabs(d(rng)) + 1e-4f, d(rng)};
        if (family == 1) g = {1e-6f * std::fabs(d(rng)), -40.0f + 1e-3f * d(rng)};
        if (family == 2) g = {std::exp2(e(rng)), (rng() % 2 ? 1.0f : -1.0f) * std::exp2(e(rng))};
      }
      RoundRowGrids(*f, k, grids.data());
      std::vector<GroupGrid> again = grids, back(grids.size());
      RoundRowGrids(*f, k, again.data());
      std::vector<uint8_t> codes(k, 1), codes_back(k);
      std::vector<uint8_t> row(RowBytes(*f, k));
      EncodeRow(*f, grids.data(), codes.data(), k, row.data());
      DecodeRow(*f, row.data(), k, back.data(), codes_back.data());
      for (size_t b = 0; b < grids.size(); ++b) {
        ASSERT_EQ(again[b].scale, grids[b].scale) << f->name << " family " << family << " group " << b
                                                  << " not idempotent";
        ASSERT_EQ(again[b].offset, grids[b].offset) << f->name << " family " << family << " group " << b;
        ASSERT_EQ(back[b].scale, grids[b].scale) << f->name << " family " << family << " group " << b
                                                 << " not storable";
        ASSERT_EQ(back[b].offset, grids[b].offset) << f->name << " family " << family << " k=" << k
                                                    << " group " << b;
      }
    }
   }
  }
  // The symmetric formats fix the offset from the scale.
  GroupGrid sg{0.25f, 7.0f};
  RoundRowGrids(**FindFormat("w2sg32"), 32, &sg);
  EXPECT_EQ(sg.offset, -0.375f);
  GroupGrid w8{0.5f, 7.0f};
  RoundRowGrids(**FindFormat("w8"), 100, &w8);
  EXPECT_EQ(w8.offset, -63.5f);
}

}  // namespace
}  // namespace bitlens::quant
