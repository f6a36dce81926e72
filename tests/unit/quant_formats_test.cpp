// The format table and the reference RTN quantizers: bpw equals the bytes
// written, round trips stay within half a step, on-grid weights come back
// exactly, the MSE clip search never loses to min-max, bad shapes are refused.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/f16.h"
#include "quant/block_codes.h"
#include "quant/formats.h"
#include "quant/grid.h"
#include "quant/rtn.h"

namespace bitlens::quant {
namespace {

std::vector<float> NormalWeights(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.02f);
  std::vector<float> w(static_cast<size_t>(count));
  for (float& x : w) x = d(rng);
  return w;
}

// Student-t with 2 degrees of freedom: rare weights 10-100x the typical one,
// like the outlier channels of real LLM weights.
std::vector<float> HeavyTailedWeights(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> d(2.0f);
  std::vector<float> w(static_cast<size_t>(count));
  for (float& x : w) x = 0.01f * d(rng);
  return w;
}

std::vector<uint8_t> Quantize(const FormatInfo& f, const std::vector<float>& w, int64_t n,
                              int64_t k, RangeSearch search, uint8_t fill = 0) {
  std::vector<uint8_t> packed(static_cast<size_t>(n) * RowBytes(f, k), fill);
  const Status s = QuantizeRowsRef(f, w.data(), n, k, search, packed);
  EXPECT_TRUE(s.ok()) << f.name << ": " << s.message();
  return packed;
}

std::vector<float> Dequantize(const FormatInfo& f, const std::vector<uint8_t>& packed, int64_t n,
                              int64_t k) {
  std::vector<float> out(static_cast<size_t>(n * k));
  const Status s = DequantizeRowsRef(f, packed, n, k, out.data());
  EXPECT_TRUE(s.ok()) << f.name << ": " << s.message();
  return out;
}

double SquaredError(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0.0;
  for (size_t i = 0; i < a.size(); ++i) e += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return e;
}

bool IsGroupwise(const FormatInfo& f) { return f.group_size > 0; }

TEST(QuantFormats, TableBpwEqualsBytesActuallyWritten) {
  const int64_t n = 3;
  for (const FormatInfo& f : AllFormats()) {
    // The hand-written bpw agrees with the block struct the compiler sized.
    EXPECT_DOUBLE_EQ(f.bpw, 8.0 * f.block_bytes / f.block_weights) << f.name;
    // Whole blocks and ragged rows (partial last block, padding counted).
    for (int64_t k : {1, 31, 33, 100, 128, 256, 4096, 4304}) {
      const std::vector<float> w = NormalWeights(n * k, 7);
      // Every byte of the exact-size buffer is written: two different fills
      // give identical output.
      const auto zeros = Quantize(f, w, n, k, RangeSearch::kMinMax, 0x00);
      const auto ones = Quantize(f, w, n, k, RangeSearch::kMinMax, 0xff);
      ASSERT_EQ(zeros, ones) << f.name << " k=" << k << " leaves bytes unwritten";
      const double written_bpw = 8.0 * zeros.size() / double(n * k);
      EXPECT_DOUBLE_EQ(written_bpw, BitsPerWeight(f, k))
          << f.name << " k=" << k << ": table " << BitsPerWeight(f, k) << " bpw, written "
          << written_bpw;
      if (k % f.block_weights == 0) {
        EXPECT_DOUBLE_EQ(BitsPerWeight(f, k), f.bpw + 8.0 * f.row_header_bytes / k) << f.name;
      }
    }
  }
  EXPECT_DOUBLE_EQ(BitsPerWeight(**FindFormat("w2g64"), 4096), 2.5);
  // 100 weights of w2g64 take two whole blocks: 40 bytes, 3.2 bpw.
  EXPECT_DOUBLE_EQ(BitsPerWeight(**FindFormat("w2g64"), 100), 3.2);
  EXPECT_DOUBLE_EQ(BitsPerWeight(**FindFormat("w8"), 4096), 8.0 + 32.0 / 4096);
}

// Largest |w - dq| the format allows for a weight w under its stored group
// grid (from DecodeRow). f16 scale/min formats: half a step, plus the f16
// rounding of min and scale (relative 2^-11, absolute 2^-25 in the subnormal
// range) which can move the grid's ends inward by at most |min| + qmax * scale
// of that, plus a few f32 ulps of the arithmetic (2^-21 relative, generous).
double AllowedError(const FormatInfo& f, const GroupGrid& grid, float w) {
  const double scale = std::fabs(grid.scale), span = std::fabs(grid.offset) + QMax(f) * scale;
  switch (f.encoding) {
    case ScaleEncoding::kF16ScaleMin:
      return scale / 2 + 0x1p-11 * (1 + 0x1p-8) * span + (QMax(f) + 1) * 0x1p-25 +
             0x1p-21 * (span + std::fabs(w));
    case ScaleEncoding::kDoubleQuantScaleMin:
      // Min-max double quantization rounds the min down and the scale up, so
      // the grid covers the group: half a step plus f32 ulps.
      return scale / 2 + 0x1p-21 * (span + std::fabs(w));
    case ScaleEncoding::kF16ScaleStretched:
    case ScaleEncoding::kF16ScaleTernary:
      // max|w| sits at the outer grid point (1.5 scale, or scale), inside the
      // grid's half-step reach even after f16 rounding of the scale; a scale
      // that underflows f16 to 0 leaves |w| <= 1.5 * 2^-25 as the error.
      return scale / 2 + 0x1p-24 + 0x1p-21 * std::fabs(w);
    case ScaleEncoding::kF32ScalePerRow:
      return scale / 2 + 0x1p-21 * std::fabs(w);
    case ScaleEncoding::kNone:
      // Passthrough: half an ulp of the 16-bit type.
      return std::string(f.name) == "f16" ? 0x1p-11 * std::fabs(w) + 0x1p-25
                                          : 0x1p-8 * std::fabs(w);
  }
  return 0.0;
}

TEST(QuantFormats, RoundTripStaysWithinHalfAStep) {
  const int64_t n = 4;
  for (const FormatInfo& f : AllFormats()) {
    for (int64_t k : {256, 100, 33}) {
      for (int data = 0; data < 2; ++data) {
        const auto w = data == 0 ? NormalWeights(n * k, 11) : HeavyTailedWeights(n * k, 12);
        for (RangeSearch search : {RangeSearch::kMinMax, RangeSearch::kMseClip}) {
          // Clipping deliberately gives up the bound on the clipped tails.
          if (search == RangeSearch::kMseClip && IsGroupwise(f)) continue;
          const auto packed = Quantize(f, w, n, k, search);
          const auto dq = Dequantize(f, packed, n, k);
          double worst_ratio = 0.0;
          std::vector<GroupGrid> grids(std::max<int64_t>(NumGroups(f, k), 1));
          std::vector<uint8_t> codes(k);
          const int64_t g = f.group_size > 0 ? f.group_size : k;
          for (int64_t r = 0; r < n; ++r) {
            DecodeRow(f, packed.data() + r * RowBytes(f, k), k, grids.data(), codes.data());
            for (int64_t i = 0; i < k; ++i) {
              const float x = w[r * k + i];
              const double err = std::fabs(double(x) - dq[r * k + i]);
              const double allowed = AllowedError(f, grids[HasGrid(f) ? i / g : 0], x);
              worst_ratio = std::max(worst_ratio, allowed > 0 ? err / allowed : err);
              ASSERT_LE(err, allowed) << f.name << " k=" << k << " data " << data << " [" << r
                                      << ", " << i << "] w=" << x << " dq=" << dq[r * k + i];
            }
          }
          std::printf("%-7s k=%-4d data=%s search=%s worst |err|/bound = %.4f\n", f.name, int(k),
                      data ? "heavy " : "normal", search == RangeSearch::kMseClip ? "clip  " : "minmax",
                      worst_ratio);
        }
      }
    }
  }
}

TEST(QuantFormats, WeightsOnTheGridComeBackExactly) {
  const int64_t n = 3;
  std::mt19937 rng(5);
  for (const FormatInfo& f : AllFormats()) {
    for (int64_t k : {256, 100}) {  // 100: a partial last group, its grid from valid weights only
      std::vector<float> w(static_cast<size_t>(n * k));
      for (int64_t r = 0; r < n; ++r) {
        float* row = w.data() + r * k;
        if (f.encoding == ScaleEncoding::kF16ScaleStretched ||
            f.encoding == ScaleEncoding::kF16ScaleTernary) {
          // Dyadic scale; codes 0 and qmax in every group put max|w| on the
          // outer grid point (1.5 scale, or scale for ternary).
          const int qmax = QMax(f);
          const float center = qmax / 2.0f;
          for (int64_t g0 = 0; g0 < k; g0 += f.group_size) {
            const float scale = float(1 + rng() % 16) / 64.0f;
            for (int64_t i = 0; i < std::min<int64_t>(f.group_size, k - g0); ++i) {
              const int q = i == 0 ? 0 : i == 1 ? qmax : int(rng() % (qmax + 1));
              row[g0 + i] = scale * (float(q) - center);
            }
          }
        } else if (f.encoding == ScaleEncoding::kDoubleQuantScaleMin) {
          // Dyadic d, m0, dm; the first group has scale code 15 and min code 0,
          // the second min code 15, so the covering min-max finds exactly these
          // factors again; every group holds codes 0 and 3.
          for (int64_t s0 = 0; s0 < k; s0 += f.block_weights) {
            const float d = float(1 + rng() % 8) / 1024.0f, m0 = -float(rng() % 64) / 32.0f;
            const float dm = float(rng() % 8) / 256.0f;
            for (int64_t g0 = s0, j = 0; g0 < std::min(k, s0 + f.block_weights); g0 += f.group_size, ++j) {
              const int sc = j == 0 ? 15 : int(1 + rng() % 15);
              const int mc = j == 0 ? 0 : j == 1 ? 15 : int(rng() % 16);
              const float scale = d * float(sc), min = m0 + dm * float(mc);
              for (int64_t i = 0; i < std::min<int64_t>(f.group_size, k - g0); ++i) {
                const int q = i == 0 ? 0 : i == 1 ? 3 : int(rng() % 4);
                row[g0 + i] = min + scale * float(q);
              }
            }
          }
        } else if (IsGroupwise(f)) {
          // Dyadic scale and min, so min + scale * q is exact in f32 and f16, and
          // each group holds codes 0 and qmax so min-max finds the same grid.
          // Positive minimums too: a padded group must not see the padding.
          const int qmax = (1 << f.bits) - 1;
          for (int64_t g0 = 0; g0 < k; g0 += f.group_size) {
            const float scale = float(1 + rng() % 16) / 64.0f, min = float(int(rng() % 64) - 48) / 32.0f;
            for (int64_t i = 0; i < std::min<int64_t>(f.group_size, k - g0); ++i) {
              const int q = i == 0 ? 0 : i == 1 ? qmax : int(rng() % (qmax + 1));
              row[g0 + i] = min + scale * float(q);
            }
          }
        } else if (f.encoding == ScaleEncoding::kF32ScalePerRow) {
          const float scale = std::ldexp(1.0f, -int(3 + r));
          for (int64_t i = 0; i < k; ++i) {
            const int q = i == 0 ? 127 : int(rng() % 255) - 127;
            row[i] = scale * float(q);
          }
        } else {
          // At most 8 significant bits: exact in bf16 (and f16).
          for (int64_t i = 0; i < k; ++i) row[i] = float(int(rng() % 255) - 127) / 16.0f;
        }
      }
      for (RangeSearch search : {RangeSearch::kMinMax, RangeSearch::kMseClip}) {
        const auto dq = Dequantize(f, Quantize(f, w, n, k, search), n, k);
        for (size_t i = 0; i < w.size(); ++i) {
          ASSERT_EQ(dq[i], w[i]) << f.name << " k=" << k << " element " << i
                                 << (search == RangeSearch::kMseClip ? " (mse clip)" : "");
        }
      }
    }
  }
}

TEST(QuantFormats, MseClipSearchNeverWorseThanMinMax) {
  const int64_t n = 16, k = 1024;
  for (const FormatInfo& f : AllFormats()) {
    if (!IsGroupwise(f)) continue;
    for (int data = 0; data < 2; ++data) {
      const auto w = data == 0 ? NormalWeights(n * k, 21) : HeavyTailedWeights(n * k, 22);
      const double minmax =
          SquaredError(w, Dequantize(f, Quantize(f, w, n, k, RangeSearch::kMinMax), n, k));
      const double clip =
          SquaredError(w, Dequantize(f, Quantize(f, w, n, k, RangeSearch::kMseClip), n, k));
      std::printf("%-7s data=%s  mse min-max %.4e  mse clip %.4e  (%.1f%% lower)\n", f.name,
                  data ? "heavy " : "normal", minmax / (n * k), clip / (n * k),
                  100.0 * (1.0 - clip / minmax));
      EXPECT_LE(clip, minmax) << f.name << " data " << data;
      // The search must actually find something on tails this heavy.
      if (data == 1) {
        EXPECT_LT(clip, 0.99 * minmax) << f.name;
      }
    }
  }
}

// t1's trit bytes: every pattern of 5 (and 4) base-3 digits survives the
// multiply-and-shift decode the kernels use.
TEST(QuantFormats, TritBytesDecodeEveryDigitPattern) {
  for (int digits : {5, 4}) {
    const int patterns = digits == 5 ? 243 : 81;
    for (int v = 0; v < patterns; ++v) {
      uint8_t t[5];
      for (int p = digits - 1, x = v; p >= 0; --p, x /= 3) t[p] = static_cast<uint8_t>(x % 3);
      const uint8_t byte = PackTrits(t, digits);
      for (int p = 0; p < digits; ++p) {
        ASSERT_EQ(TritAt(byte, p), t[p]) << digits << " digits, value " << v << ", byte " << int(byte)
                                         << ", digit " << p;
      }
    }
  }
}

// The bit positions formats.h documents, transcribed independently of the
// encoder: 3-bit planes, t1's trit bytes, the double-quantized header.
TEST(QuantFormats, LayoutBitPositionsAreTheDocumentedOnes) {
  {
    const FormatInfo& f = **FindFormat("w3g32");
    uint8_t codes[32];
    for (int i = 0; i < 32; ++i) codes[i] = static_cast<uint8_t>((5 * i + 3) % 8);
    const GroupGrid grid{0.5f, -1.0f};
    uint8_t row[sizeof(BlockW3G32)];
    EncodeRow(f, &grid, codes, 32, row);
    for (int j = 0; j < 8; ++j) {  // ql: weight j + 8s at bits 2s
      int want = 0;
      for (int s = 0; s < 4; ++s) want |= (codes[j + 8 * s] & 3) << (2 * s);
      EXPECT_EQ(row[offsetof(BlockW3G32, ql) + j], want) << "w3g32 ql[" << j << "]";
    }
    for (int j = 0; j < 4; ++j) {  // qh: weight j + 4b at bit b
      int want = 0;
      for (int b = 0; b < 8; ++b) want |= ((codes[j + 4 * b] >> 2) & 1) << b;
      EXPECT_EQ(row[offsetof(BlockW3G32, qh) + j], want) << "w3g32 qh[" << j << "]";
    }
  }
  {
    const FormatInfo& f = **FindFormat("t1");
    uint8_t codes[256];
    for (int i = 0; i < 256; ++i) codes[i] = static_cast<uint8_t>((7 * i + i / 5) % 3);
    const GroupGrid grid{0.25f, -0.25f};
    uint8_t row[sizeof(BlockT1)];
    EncodeRow(f, &grid, codes, 256, row);
    for (int b = 0; b < 48; ++b) {  // q5[b]: weights b + 48p, p = 0 most significant
      int v = 0;
      for (int p = 0; p < 5; ++p) v = 3 * v + codes[b + 48 * p];
      EXPECT_EQ(row[offsetof(BlockT1, q5) + b], (256 * v + 242) / 243) << "t1 q5[" << b << "]";
    }
    for (int b = 0; b < 4; ++b) {  // q4[b]: weights 240 + b + 4p
      int v = 0;
      for (int p = 0; p < 4; ++p) v = 3 * v + codes[240 + b + 4 * p];
      EXPECT_EQ(row[offsetof(BlockT1, q4) + b], (256 * v + 80) / 81) << "t1 q4[" << b << "]";
    }
  }
  {
    const FormatInfo& f = **FindFormat("w2g32dq");
    const float d = 0.5f, m0 = -1.0f, dm = 0.125f;
    const int sc[8] = {15, 3, 0, 7, 1, 15, 9, 2}, mc[8] = {0, 15, 4, 7, 0, 1, 15, 8};
    GroupGrid grids[8];
    for (int j = 0; j < 8; ++j) grids[j] = {d * float(sc[j]), m0 + dm * float(mc[j])};
    uint8_t codes[256];
    for (int i = 0; i < 256; ++i) codes[i] = static_cast<uint8_t>((i + i / 7) % 4);
    uint8_t row[sizeof(BlockW2G32DQ)];
    EncodeRow(f, grids, codes, 256, row);
    BlockW2G32DQ block;
    std::memcpy(&block, row, sizeof(block));
    EXPECT_EQ(F16ToF32(block.d), d);
    EXPECT_EQ(F16ToF32(block.m0), m0);
    EXPECT_EQ(F16ToF32(block.dm), dm);
    for (int j = 0; j < 8; ++j) EXPECT_EQ(block.sm[j], sc[j] | (mc[j] << 4)) << "sm[" << j << "]";
    for (int b = 0; b < 64; ++b) {  // weight b + 64s at bits 2s
      int want = 0;
      for (int s = 0; s < 4; ++s) want |= codes[b + 64 * s] << (2 * s);
      EXPECT_EQ(block.q[b], want) << "w2g32dq q[" << b << "]";
    }
  }
}

// Double quantization stores group mins of either sign: all-positive and
// all-negative rows and rows whose groups alternate sign keep their own mins
// (not clamped to 0), stay within half a step, and cost little MSE over the
// same groups with f16 scale and min.
TEST(QuantFormats, DoubleQuantizedMinsOfEitherSign) {
  const int64_t n = 8, k = 1024;
  for (const char* name : {"w2g32dq", "w2g64dq"}) {
    const FormatInfo& f = **FindFormat(name);
    const FormatInfo& plain = **FindFormat(std::string(name).substr(0, 5));
    for (int data = 0; data < 4; ++data) {
      std::vector<float> w = NormalWeights(n * k, 40 + data);
      for (int64_t i = 0; i < n * k; ++i) {
        if (data == 1) w[i] = std::fabs(w[i]) + 0.03f;   // all positive
        if (data == 2) w[i] = -std::fabs(w[i]) - 0.03f;  // all negative
        if (data == 3) w[i] += (i / f.group_size) % 2 ? 0.05f : -0.05f;  // groups of both signs
      }
      const auto packed = Quantize(f, w, n, k, RangeSearch::kMinMax);
      const auto dq = Dequantize(f, packed, n, k);
      std::vector<GroupGrid> grids(NumGroups(f, k));
      std::vector<uint8_t> codes(k);
      for (int64_t r = 0; r < n; ++r) {
        DecodeRow(f, packed.data() + r * RowBytes(f, k), k, grids.data(), codes.data());
        for (int64_t i = 0; i < k; ++i) {
          const GroupGrid& g = grids[i / f.group_size];
          if (data == 1) {
            ASSERT_GT(g.offset, 0.0f) << name << " all-positive row, weight " << i;
          }
          const double err = std::fabs(double(w[r * k + i]) - dq[r * k + i]);
          ASSERT_LE(err, AllowedError(f, g, w[r * k + i]))
              << name << " data " << data << " [" << r << ", " << i << "] w=" << w[r * k + i]
              << " dq=" << dq[r * k + i] << " scale=" << g.scale << " min=" << g.offset;
        }
      }
      for (RangeSearch search : {RangeSearch::kMinMax, RangeSearch::kMseClip}) {
        const double mse = SquaredError(w, Dequantize(f, Quantize(f, w, n, k, search), n, k)) / (n * k);
        const double mse_plain =
            SquaredError(w, Dequantize(plain, Quantize(plain, w, n, k, search), n, k)) / (n * k);
        std::printf("%-7s data=%d %s  mse %.4e, with f16 scale/min (%s) %.4e, ratio %.3f\n", name, data,
                    search == RangeSearch::kMseClip ? "clip  " : "minmax", mse, plain.name, mse_plain,
                    mse / mse_plain);
        // Four-bit scale and min codes cost a little resolution, never a lot.
        EXPECT_LT(mse, 1.3 * mse_plain) << name << " data " << data;
      }
    }
  }
}

TEST(QuantFormats, BadShapesAndValuesGiveClearErrors) {
  const FormatInfo& w2g64 = **FindFormat("w2g64");
  std::vector<float> w(2 * 96, 0.1f);
  std::vector<uint8_t> buf(4096);
  auto expect_error = [](const Status& s, const std::string& needle) {
    ASSERT_FALSE(s.ok()) << "expected an error mentioning '" << needle << "'";
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.message();
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
  };
  // Ragged k is valid: 96 weights take two whole 20-byte blocks per row.
  EXPECT_TRUE(QuantizeRowsRef(w2g64, w.data(), 2, 96, RangeSearch::kMinMax,
                              std::span(buf).first(2 * 40)).ok());
  expect_error(QuantizeRowsRef(w2g64, w.data(), 2, 96, RangeSearch::kMinMax,
                               std::span(buf).first(2 * 36)),
               "needs 80 bytes of packed weights, buffer has 72");
  expect_error(CheckRowLength(w2g64, (int64_t{1} << 31) + 1), "more than the supported");
  expect_error(QuantizeRowsRef(w2g64, w.data(), 2, 0, RangeSearch::kMinMax, std::span(buf).first(0)),
               "at least one weight");
  expect_error(QuantizeRowsRef(w2g64, w.data(), -1, 64, RangeSearch::kMinMax, std::span(buf).first(0)),
               "negative row count");
  expect_error(QuantizeRowsRef(w2g64, w.data(), 2, 64, RangeSearch::kMinMax, std::span(buf).first(39)),
               "needs 40 bytes of packed weights, buffer has 39");
  std::vector<float> out(128);
  expect_error(DequantizeRowsRef(w2g64, std::span(buf).first(41), 2, 64, out.data()),
               "needs 40 bytes");
  w[70] = NAN;
  expect_error(QuantizeRowsRef(w2g64, w.data(), 2, 64, RangeSearch::kMinMax, std::span(buf).first(40)),
               "weight [1, 6]");
  w[70] = 1e5f;  // the f16 min would overflow
  expect_error(QuantizeRowsRef(w2g64, w.data(), 2, 64, RangeSearch::kMinMax, std::span(buf).first(40)),
               "not finite or exceeds");
  auto missing = FindFormat("w3g7");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("w2g32"), std::string::npos) << missing.status().message();
  for (const FormatInfo& f : AllFormats()) EXPECT_EQ(*FindFormat(f.name), &f);
}

}  // namespace
}  // namespace bitlens::quant
