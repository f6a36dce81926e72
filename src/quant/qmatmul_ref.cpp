// quant/qmatmul_ref: the per-format row dot products and the GEMM loop over
// them. Codes are decoded inline with the same interleave as quant/rtn.
#include "quant/qmatmul_ref.h"

#include <algorithm>
#include <cstring>

#include "base/f16.h"
#include "quant/block_codes.h"

namespace bitlens::quant {

// Block: [f16 scale][f16 min][code planes] (formats.h). Σ x·(min + scale·q)
// is split into scale·Σ x·q + min·Σ x, as a fast kernel does.
float VecDotGroupAsymRef(const FormatInfo& f, const uint8_t* row, const float* x, int64_t k) {
  const int g = f.group_size;
  float sum = 0.0f;
  for (int64_t i0 = 0; i0 < k; i0 += g, row += f.block_bytes, x += g) {
    uint16_t s16, m16;
    std::memcpy(&s16, row, 2);
    std::memcpy(&m16, row + 2, 2);
    const int len = static_cast<int>(std::min<int64_t>(g, k - i0));  // ragged last group
    float acc = 0.0f, sx = 0.0f;
    for (int i = 0; i < len; ++i) {
      acc += x[i] * static_cast<float>(PlaneCode(row + 4, g, f.bits, i));
      sx += x[i];
    }
    sum += F16ToF32(s16) * acc + F16ToF32(m16) * sx;
  }
  return sum;
}

// Super-block of 256: per group of g, (d·sc)·Σ x·q + (m0 + dm·mc)·Σ x, groups
// in order across super-blocks.
float VecDotDqRef(const FormatInfo& f, const uint8_t* row, const float* x, int64_t k) {
  const int bw = f.block_weights, g = f.group_size, per_block = bw / g;
  float sum = 0.0f;
  for (int64_t i0 = 0; i0 < k; i0 += bw, row += f.block_bytes) {
    const uint8_t* q = row + kDqHeaderBytes + per_block;
    const int len = static_cast<int>(std::min<int64_t>(bw, k - i0));
    for (int j0 = 0; j0 < len; j0 += g) {
      float acc = 0.0f, sx = 0.0f;
      for (int i = j0; i < std::min(len, j0 + g); ++i) {
        acc += x[i0 + i] * static_cast<float>(PlaneCode(q, bw, 2, i));
        sx += x[i0 + i];
      }
      const DqGroup grid = DqGroupAt(row, j0 / g);
      sum += grid.scale * acc + grid.offset * sx;
    }
  }
  return sum;
}

// Block: [f16 scale][codes], w = scale·c with c = q − 1.5 (stretched) or
// t − 1 (ternary), exact in f32: scale·Σ x·c.
float VecDotSymmetricRef(const FormatInfo& f, const uint8_t* row, const float* x, int64_t k) {
  const int g = f.group_size;
  const bool ternary = f.encoding == ScaleEncoding::kF16ScaleTernary;
  float sum = 0.0f;
  for (int64_t i0 = 0; i0 < k; i0 += g, row += f.block_bytes, x += g) {
    uint16_t s16;
    std::memcpy(&s16, row, 2);
    const int len = static_cast<int>(std::min<int64_t>(g, k - i0));
    float acc = 0.0f;
    for (int i = 0; i < len; ++i) acc += x[i] * CenteredCode(ternary, row + 2, g, i);
    sum += F16ToF32(s16) * acc;
  }
  return sum;
}

// Row: [f32 scale][k int8].
float VecDotW8Ref(const FormatInfo&, const uint8_t* row, const float* x, int64_t k) {
  float scale;
  std::memcpy(&scale, row, 4);
  const int8_t* q = reinterpret_cast<const int8_t*>(row + 4);
  float acc = 0.0f;
  for (int64_t i = 0; i < k; ++i) acc += x[i] * static_cast<float>(q[i]);
  return scale * acc;
}

float VecDotF16Ref(const FormatInfo&, const uint8_t* row, const float* x, int64_t k) {
  float acc = 0.0f;
  for (int64_t i = 0; i < k; ++i) {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    acc += x[i] * F16ToF32(h);
  }
  return acc;
}

float VecDotBf16Ref(const FormatInfo&, const uint8_t* row, const float* x, int64_t k) {
  float acc = 0.0f;
  for (int64_t i = 0; i < k; ++i) {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    acc += x[i] * Bf16ToF32(h);
  }
  return acc;
}

// x [m, k], packed_w n rows of RowBytes(format, k), bias [n] or null -> y [m, n]
void QMatMulRef(const float* x, int64_t m, const FormatInfo& format, const uint8_t* packed_w,
                int64_t n, int64_t k, const float* bias, float* y) {
  const size_t row_bytes = RowBytes(format, k);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t o = 0; o < n; ++o) {
      const float dot = format.vec_dot_ref(format, packed_w + static_cast<size_t>(o) * row_bytes,
                                           x + r * k, k);
      y[r * n + o] = bias ? dot + bias[o] : dot;
    }
  }
}

}  // namespace bitlens::quant
