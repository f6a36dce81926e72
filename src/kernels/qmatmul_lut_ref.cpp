// kernels/qmatmul_lut_ref: which formats have a table kernel, and the scalar
// table reference (explicit int16 tables per x row, indexed by code nibbles
// or trit bytes), equal to QMatMulInt8BlocksRef bit for bit.
#include <algorithm>
#include <cstring>
#include <vector>

#include "base/f16.h"
#include "kernels/qmatmul_a8.h"
#include "kernels/qmatmul_lut.h"
#include "kernels/qmatmul_lut_kind.h"
#include "quant/block_codes.h"
#include "quant/grid.h"

// The f32 steps follow QMatMulInt8BlocksRef rounding by rounding.
#pragma GCC optimize("fp-contract=off")

namespace bitlens::kernels {

namespace lut {

Kind KindOf(const quant::FormatInfo& f) {
  using quant::ScaleEncoding;
  const int g = f.group_size;
  if (f.bits != 2 || f.block_weights != g || f.row_header_bytes != 0) return Kind::kNone;
  if (f.encoding == ScaleEncoding::kF16ScaleTernary && g == quant::kT1Block &&
      f.block_bytes == 2 + quant::kT1Bytes5 + quant::kT1Bytes4) {
    return Kind::kT1;
  }
  if (f.encoding == ScaleEncoding::kF16ScaleMin && (g == 32 || g == 64 || g == 128) && f.block_bytes == 4 + g / 4) {
    return Kind::kW2Asym;
  }
  if (f.encoding == ScaleEncoding::kF16ScaleStretched && (g == 32 || g == 64) && f.block_bytes == 2 + g / 4) {
    return Kind::kW2Stretched;
  }
  return Kind::kNone;
}

}  // namespace lut

bool LutSupports(const quant::FormatInfo& f, int64_t k) {
  return lut::KindOf(f) != lut::Kind::kNone && k > 0 && k <= kA8MaxK;
}

int LutActivationBlock(const quant::FormatInfo& f) {
  if (lut::KindOf(f) == lut::Kind::kT1) return quant::kT1Block;
  return f.group_size == 128 ? 64 : kA8Block;
}

namespace {

// t1: per trit byte j of a group, T[byte] = Σ_p (t_p(byte) − 1)·xq[weight of
// digit p]; isum = Σ lookups + bsum. One activation block per group.
void QMatMulLutT1Ref(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                     int64_t k, const float* bias, float* y) {
  constexpr int kTables = quant::kT1Bytes5 + quant::kT1Bytes4;
  const int64_t ng = quant::NumGroups(f, k);
  const size_t row_bytes = quant::RowBytes(f, k);
  std::vector<int8_t> xq(static_cast<size_t>(ng * quant::kT1Block), 0);
  std::vector<float> d(ng);
  std::vector<int32_t> bsum(ng);
  std::vector<int16_t> tables(static_cast<size_t>(ng * kTables * 256));
  for (int64_t r = 0; r < m; ++r) {
    QuantizeActivationBlocksRef(x + r * k, k, quant::kT1Block, xq.data(), d.data(), bsum.data());
    for (int64_t G = 0; G < ng; ++G) {
      const int8_t* xg = xq.data() + G * quant::kT1Block;
      for (int j = 0; j < kTables; ++j) {
        int16_t* t = tables.data() + (static_cast<size_t>(G) * kTables + j) * 256;
        const bool five = j < quant::kT1Bytes5;
        for (int b = 0; b < 256; ++b) {
          int e = 0;
          for (int p = 0; p < (five ? 5 : 4); ++p) {
            const int weight = five ? j + quant::kT1Bytes5 * p
                                    : quant::kT1Bytes5 * 5 + (j - quant::kT1Bytes5) + quant::kT1Bytes4 * p;
            e += (quant::TritAt(static_cast<uint8_t>(b), p) - 1) * xg[weight];
          }
          t[b] = static_cast<int16_t>(e);
        }
      }
    }
    for (int64_t o = 0; o < n; ++o) {
      const uint8_t* row = w + static_cast<size_t>(o) * row_bytes;
      float sum = 0.0f;
      for (int64_t G = 0; G < ng; ++G, row += f.block_bytes) {
        uint16_t s16;
        std::memcpy(&s16, row, 2);
        const float scale = F16ToF32(s16), offset = -scale;
        int32_t isum = bsum[G];
        for (int j = 0; j < kTables; ++j) isum += tables[(static_cast<size_t>(G) * kTables + j) * 256 + row[2 + j]];
        float acc = 0.0f, sx = 0.0f;
        acc += d[G] * static_cast<float>(isum);
        sx += d[G] * static_cast<float>(bsum[G]);
        sum += scale * acc + offset * sx;
      }
      y[r * n + o] = bias ? sum + bias[o] : sum;
    }
  }
}

}  // namespace

void QMatMulLutRef(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                   int64_t k, const float* bias, float* y) {
  const lut::Kind kind = lut::KindOf(f);
  if (kind == lut::Kind::kT1) return QMatMulLutT1Ref(x, m, f, w, n, k, bias, y);
  const int g = f.group_size, q_bytes = g / 4, header = f.block_bytes - q_bytes;
  const int block = LutActivationBlock(f), blocks_per_group = g / block;
  const int64_t ng = quant::NumGroups(f, k), nb = (k + block - 1) / block;
  const size_t row_bytes = quant::RowBytes(f, k);
  // Activations padded with zeros to whole groups (a table entry may name a
  // weight past k; its activation is 0, so it adds nothing).
  std::vector<int8_t> xq(static_cast<size_t>(ng * g), 0);
  std::vector<float> d(static_cast<size_t>(ng * blocks_per_group), 0.0f);
  std::vector<int32_t> bsum(d.size(), 0);
  // tables[(G·q_bytes + j)·2 + half][16]: half 0 = low nibble, 1 = high nibble.
  std::vector<int16_t> tables(static_cast<size_t>(ng * q_bytes) * 2 * 16);
  std::vector<int32_t> isum(blocks_per_group);
  for (int64_t r = 0; r < m; ++r) {
    QuantizeActivationBlocksRef(x + r * k, k, block, xq.data(), d.data(), bsum.data());
    for (int64_t G = 0; G < ng; ++G) {
      const int8_t* xg = xq.data() + G * g;
      for (int j = 0; j < q_bytes; ++j) {
        int16_t* t = tables.data() + (static_cast<size_t>(G * q_bytes + j) * 2) * 16;
        for (int idx = 0; idx < 16; ++idx) {
          const int c0 = (idx & 3) - 2, c1 = (idx >> 2) - 2;
          t[idx] = static_cast<int16_t>(c0 * xg[j] + c1 * xg[q_bytes + j]);
          t[16 + idx] = static_cast<int16_t>(c0 * xg[2 * q_bytes + j] + c1 * xg[3 * q_bytes + j]);
        }
      }
    }
    for (int64_t o = 0; o < n; ++o) {
      const uint8_t* row = w + static_cast<size_t>(o) * row_bytes;
      float sum = 0.0f;
      for (int64_t G = 0; G < ng; ++G, row += f.block_bytes) {
        uint16_t s16, m16 = 0;
        std::memcpy(&s16, row, 2);
        if (kind == lut::Kind::kW2Asym) std::memcpy(&m16, row + 2, 2);
        const float scale = F16ToF32(s16);
        const float offset = kind == lut::Kind::kW2Asym ? F16ToF32(m16) : -1.5f * scale;
        std::fill(isum.begin(), isum.end(), 0);
        for (int j = 0; j < q_bytes; ++j) {
          const uint8_t byte = row[header + j];
          const int16_t* t = tables.data() + (static_cast<size_t>(G * q_bytes + j) * 2) * 16;
          // The block of the nibble's first weight holds its second too.
          isum[j / block] += t[byte & 15];
          isum[(2 * q_bytes + j) / block] += t[16 + (byte >> 4)];
        }
        float acc = 0.0f, sx = 0.0f;
        for (int b = 0; b < blocks_per_group && G * blocks_per_group + b < nb; ++b) {
          const int64_t gb = G * blocks_per_group + b;
          acc += d[gb] * static_cast<float>(isum[b] + 2 * bsum[gb]);
          sx += d[gb] * static_cast<float>(bsum[gb]);
        }
        sum += scale * acc + offset * sx;
      }
      y[r * n + o] = bias ? sum + bias[o] : sum;
    }
  }
}

}  // namespace bitlens::kernels
