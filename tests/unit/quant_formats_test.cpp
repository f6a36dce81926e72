// The format table and the reference RTN quantizers: bpw equals the bytes
// written, round trips stay within half a step, on-grid weights come back
// exactly, the MSE clip search never loses to min-max, bad shapes are refused.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/f16.h"
#include "quant/formats.h"
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

// Largest |w - dq| the format allows for element i of a row, read from the
// packed scale/min. Group formats: half a step, plus the f16 rounding of min
// and scale (relative 2^-11, absolute 2^-25 in the subnormal range) which can
// move the grid's ends inward by at most |min| + qmax * scale of that, plus a
// few f32 ulps of the arithmetic (2^-21 relative, generous).
double AllowedError(const FormatInfo& f, const uint8_t* row, int64_t i, float w) {
  switch (f.encoding) {
    case ScaleEncoding::kF16ScaleMin: {
      const uint8_t* block = row + (i / f.group_size) * f.block_bytes;
      uint16_t s16, m16;
      std::memcpy(&s16, block, 2);
      std::memcpy(&m16, block + 2, 2);
      const double scale = F16ToF32(s16), min = std::fabs(F16ToF32(m16));
      const int qmax = (1 << f.bits) - 1;
      const double span = min + qmax * scale;
      return scale / 2 + 0x1p-11 * (1 + 0x1p-8) * span + (qmax + 1) * 0x1p-25 +
             0x1p-21 * (span + std::fabs(w));
    }
    case ScaleEncoding::kF16ScaleStretched: {
      // max|w| sits at 1.5 scale, inside the grid's half-step reach of 2 scale
      // even after f16 rounding of the scale; a scale that underflows f16 to 0
      // leaves |w| <= 1.5 * 2^-25 as the error.
      uint16_t s16;
      std::memcpy(&s16, row + (i / f.group_size) * f.block_bytes, 2);
      return F16ToF32(s16) / 2.0 + 0x1p-24 + 0x1p-21 * std::fabs(w);
    }
    case ScaleEncoding::kF32ScalePerRow: {
      float scale;
      std::memcpy(&scale, row, 4);
      return scale / 2.0 + 0x1p-21 * std::fabs(w);
    }
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
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t i = 0; i < k; ++i) {
            const float x = w[r * k + i];
            const double err = std::fabs(double(x) - dq[r * k + i]);
            const double allowed = AllowedError(f, packed.data() + r * RowBytes(f, k), i, x);
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
      if (f.encoding == ScaleEncoding::kF16ScaleStretched) {
        // Dyadic scale; codes 0 and 3 in every group put max|w| at 1.5 * scale.
        for (int64_t g0 = 0; g0 < k; g0 += f.group_size) {
          const float scale = float(1 + rng() % 16) / 64.0f;
          for (int64_t i = 0; i < std::min<int64_t>(f.group_size, k - g0); ++i) {
            const int q = i == 0 ? 0 : i == 1 ? 3 : int(rng() % 4);
            row[g0 + i] = scale * (float(q) - 1.5f);
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
