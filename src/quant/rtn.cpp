// quant/rtn: round-to-nearest reference quantizers and dequantizers. Grids
// come from quant/grid already rounded to what the format stores, and codes
// are chosen against them, so dequantize reproduces exactly what was measured.
#include "quant/rtn.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "base/f16.h"
#include "quant/block_codes.h"

namespace bitlens::quant {
namespace {

static_assert(offsetof(BlockW2G32, q) == 4 && offsetof(BlockW4G64, q) == 4,
              "group blocks start with f16 scale, f16 min");
static_assert(offsetof(BlockW2SG32, q) == 2 && offsetof(BlockW2SG64, q) == 2 &&
                  offsetof(BlockT1, q5) == 2,
              "scale-only blocks start with their f16 scale");
static_assert(offsetof(BlockW3G32, ql) == 4 && offsetof(BlockW3G32, qh) == 4 + 8 &&
                  offsetof(BlockW3G64, qh) == 4 + 16,
              "3-bit blocks: the 1-bit plane follows the 2-bit plane");
static_assert(offsetof(BlockT1, q4) == 2 + kT1Bytes5 && sizeof(BlockT1::q4) == kT1Bytes4);
static_assert(offsetof(BlockW2G32DQ, sm) == kDqHeaderBytes &&
                  offsetof(BlockW2G32DQ, q) == kDqHeaderBytes + 8 &&
                  offsetof(BlockW2G64DQ, q) == kDqHeaderBytes + 4,
              "double-quantized blocks: 3 f16 factors, one byte per group, then codes");

}  // namespace

void QuantizeRowGridRef(const FormatInfo& f, const float* w, int64_t k, RangeSearch search,
                        uint8_t* out) {
  std::vector<GroupGrid> grids(static_cast<size_t>(NumGroups(f, k)));
  std::vector<uint8_t> codes(static_cast<size_t>(k));
  ChooseRowGrids(f, w, k, search, grids.data());
  const int qmax = QMax(f);
  const int64_t g = f.group_size > 0 ? f.group_size : k;
  for (int64_t i = 0; i < k; ++i) codes[i] = NearestCode(grids[i / g], qmax, w[i]);
  EncodeRow(f, grids.data(), codes.data(), k, out);
}

// Block: [f16 scale][f16 min][code planes], see formats.h ("Code planes").
// w = min + scale * q, the expression GridValue uses too.
void DequantizeRowGroupAsymRef(const FormatInfo& f, const uint8_t* in, int64_t k, float* out) {
  const int g = f.group_size;
  for (int64_t i0 = 0; i0 < k; i0 += g, in += f.block_bytes) {
    uint16_t s16, m16;
    std::memcpy(&s16, in, 2);
    std::memcpy(&m16, in + 2, 2);
    const float scale = F16ToF32(s16), min = F16ToF32(m16);
    const int len = static_cast<int>(std::min<int64_t>(g, k - i0));  // ragged last group
    for (int i = 0; i < len; ++i) {
      out[i0 + i] = min + scale * static_cast<float>(PlaneCode(in + 4, g, f.bits, i));
    }
  }
}

// Super-block: [f16 d][f16 m0][f16 dm][sc | mc << 4 per group][64 bytes of
// 2-bit codes over 256 weights]; w = (m0 + dm·mc) + (d·sc)·q.
void DequantizeRowDqRef(const FormatInfo& f, const uint8_t* in, int64_t k, float* out) {
  const int bw = f.block_weights, g = f.group_size, per_block = bw / g;
  for (int64_t i0 = 0; i0 < k; i0 += bw, in += f.block_bytes) {
    const int len = static_cast<int>(std::min<int64_t>(bw, k - i0));
    const uint8_t* q = in + kDqHeaderBytes + per_block;
    for (int i = 0; i < len; ++i) {
      const DqGroup grid = DqGroupAt(in, i / g);
      out[i0 + i] = grid.offset + grid.scale * static_cast<float>(PlaneCode(q, bw, 2, i));
    }
  }
}

// Block: [f16 scale][codes], w = scale * (q - 1.5) for the stretched grid,
// scale * (t - 1) for ternary (t1: 48 bytes of 5 trits, 4 bytes of 4).
void DequantizeRowSymmetricRef(const FormatInfo& f, const uint8_t* in, int64_t k, float* out) {
  const int g = f.group_size;
  const bool ternary = f.encoding == ScaleEncoding::kF16ScaleTernary;
  for (int64_t i0 = 0; i0 < k; i0 += g, in += f.block_bytes) {
    uint16_t s16;
    std::memcpy(&s16, in, 2);
    const float scale = F16ToF32(s16);
    const int len = static_cast<int>(std::min<int64_t>(g, k - i0));
    for (int i = 0; i < len; ++i) out[i0 + i] = scale * CenteredCode(ternary, in + 2, g, i);
  }
}

// Row: [f32 scale][k int8], w = scale * q.
void DequantizeRowW8Ref(const FormatInfo&, const uint8_t* in, int64_t k, float* out) {
  float scale;
  std::memcpy(&scale, in, 4);
  const int8_t* q = reinterpret_cast<const int8_t*>(in + 4);
  for (int64_t i = 0; i < k; ++i) out[i] = scale * static_cast<float>(q[i]);
}

void QuantizeRowF16Ref(const FormatInfo&, const float* w, int64_t k, RangeSearch, uint8_t* out) {
  for (int64_t i = 0; i < k; ++i) {
    const uint16_t h = F32ToF16(w[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

void DequantizeRowF16Ref(const FormatInfo&, const uint8_t* in, int64_t k, float* out) {
  for (int64_t i = 0; i < k; ++i) {
    uint16_t h;
    std::memcpy(&h, in + 2 * i, 2);
    out[i] = F16ToF32(h);
  }
}

void QuantizeRowBf16Ref(const FormatInfo&, const float* w, int64_t k, RangeSearch, uint8_t* out) {
  for (int64_t i = 0; i < k; ++i) {
    const uint16_t h = F32ToBf16(w[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

void DequantizeRowBf16Ref(const FormatInfo&, const uint8_t* in, int64_t k, float* out) {
  for (int64_t i = 0; i < k; ++i) {
    uint16_t h;
    std::memcpy(&h, in + 2 * i, 2);
    out[i] = Bf16ToF32(h);
  }
}

namespace {

Status CheckShape(const FormatInfo& f, int64_t n, int64_t k, size_t bytes) {
  if (n < 0) return InvalidArgument(std::string(f.name) + ": negative row count n=" + std::to_string(n));
  BL_TRY(CheckRowLength(f, k));
  const size_t want = static_cast<size_t>(n) * RowBytes(f, k);
  if (bytes != want) {
    return InvalidArgument(std::string(f.name) + ": [" + std::to_string(n) + ", " +
                           std::to_string(k) + "] needs " + std::to_string(want) +
                           " bytes of packed weights, buffer has " + std::to_string(bytes));
  }
  return Status::Ok();
}

}  // namespace

Status QuantizeRowsRef(const FormatInfo& f, const float* w, int64_t n, int64_t k,
                       RangeSearch search, std::span<uint8_t> out) {
  BL_TRY(CheckShape(f, n, k, out.size()));
  for (int64_t i = 0; i < n * k; ++i) {
    if (!std::isfinite(w[i]) || std::fabs(w[i]) > f.max_abs_weight) {
      return InvalidArgument(std::string(f.name) + ": weight [" + std::to_string(i / k) + ", " +
                             std::to_string(i % k) + "] = " + std::to_string(w[i]) +
                             " is not finite or exceeds " + std::to_string(f.max_abs_weight));
    }
  }
  const size_t row_bytes = RowBytes(f, k);
  for (int64_t r = 0; r < n; ++r) f.quantize_row_ref(f, w + r * k, k, search, out.data() + r * row_bytes);
  return Status::Ok();
}

Status DequantizeRowsRef(const FormatInfo& f, std::span<const uint8_t> in, int64_t n, int64_t k,
                         float* out) {
  BL_TRY(CheckShape(f, n, k, in.size()));
  const size_t row_bytes = RowBytes(f, k);
  for (int64_t r = 0; r < n; ++r) f.dequantize_row_ref(f, in.data() + r * row_bytes, k, out + r * k);
  return Status::Ok();
}

}  // namespace bitlens::quant
