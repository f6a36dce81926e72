// quant/qmatmul_ref: the per-format row dot products and the GEMM loop over
// them. Codes are decoded inline with the same interleave as quant/rtn.
#include "quant/qmatmul_ref.h"

#include <algorithm>
#include <cstring>

#include "base/f16.h"

namespace bitlens::quant {

// Block: [f16 scale][f16 min][g·bits/8 code bytes]; weight i of the group is
// in byte i % qbytes at bit bits·(i / qbytes). Σ x·(min + scale·q) is split
// into scale·Σ x·q + min·Σ x, as a fast kernel does.
float VecDotGroupAsymRef(const FormatInfo& f, const uint8_t* row, const float* x, int64_t k) {
  const int g = f.group_size, bits = f.bits, mask = (1 << bits) - 1;
  const int qbytes = g * bits / 8;
  float sum = 0.0f;
  for (int64_t i0 = 0; i0 < k; i0 += g, row += f.block_bytes, x += g) {
    uint16_t s16, m16;
    std::memcpy(&s16, row, 2);
    std::memcpy(&m16, row + 2, 2);
    const uint8_t* q = row + 4;
    const int len = static_cast<int>(std::min<int64_t>(g, k - i0));  // ragged last group
    float acc = 0.0f, sx = 0.0f;
    for (int i = 0; i < len; ++i) {
      const int code = (q[i % qbytes] >> (bits * (i / qbytes))) & mask;
      acc += x[i] * static_cast<float>(code);
      sx += x[i];
    }
    sum += F16ToF32(s16) * acc + F16ToF32(m16) * sx;
  }
  return sum;
}

// Block: [f16 scale][g/4 code bytes], w = scale·(q − 1.5); q − 1.5 is exact in f32.
float VecDotGroupStretchedRef(const FormatInfo& f, const uint8_t* row, const float* x, int64_t k) {
  const int g = f.group_size, qbytes = g / 4;
  float sum = 0.0f;
  for (int64_t i0 = 0; i0 < k; i0 += g, row += f.block_bytes, x += g) {
    uint16_t s16;
    std::memcpy(&s16, row, 2);
    const uint8_t* q = row + 2;
    const int len = static_cast<int>(std::min<int64_t>(g, k - i0));
    float acc = 0.0f;
    for (int i = 0; i < len; ++i) {
      const int code = (q[i % qbytes] >> (2 * (i / qbytes))) & 3;
      acc += x[i] * (static_cast<float>(code) - 1.5f);
    }
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
