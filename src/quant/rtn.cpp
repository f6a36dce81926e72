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

namespace bitlens::quant {
namespace {

static_assert(offsetof(BlockW2G32, q) == 4 && offsetof(BlockW4G64, q) == 4,
              "group blocks start with f16 scale, f16 min");
static_assert(offsetof(BlockW2SG32, q) == 2 && offsetof(BlockW2SG64, q) == 2,
              "stretched blocks start with their f16 scale");

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

// Block: [f16 scale][f16 min][g * bits / 8 bytes of codes], see formats.h for
// the interleaving (weight i -> byte i % qbytes, shift bits * (i / qbytes)).
// w = min + scale * q, the expression GridValue uses too.
void DequantizeRowGroupAsymRef(const FormatInfo& f, const uint8_t* in, int64_t k, float* out) {
  const int g = f.group_size, bits = f.bits, mask = (1 << bits) - 1;
  const int qbytes = g * bits / 8;
  for (int64_t i0 = 0; i0 < k; i0 += g, in += f.block_bytes) {
    uint16_t s16, m16;
    std::memcpy(&s16, in, 2);
    std::memcpy(&m16, in + 2, 2);
    const float scale = F16ToF32(s16), min = F16ToF32(m16);
    const uint8_t* q = in + 4;
    const int len = static_cast<int>(std::min<int64_t>(g, k - i0));
    for (int i = 0; i < len; ++i) {
      out[i0 + i] = min + scale * static_cast<float>((q[i % qbytes] >> (bits * (i / qbytes))) & mask);
    }
  }
}

// Block: [f16 scale][g / 4 bytes of codes], w = scale * (q - 1.5).
void DequantizeRowGroupStretchedRef(const FormatInfo& f, const uint8_t* in, int64_t k, float* out) {
  const int g = f.group_size, qbytes = g / 4;
  for (int64_t i0 = 0; i0 < k; i0 += g, in += f.block_bytes) {
    uint16_t s16;
    std::memcpy(&s16, in, 2);
    const float scale = F16ToF32(s16);
    const uint8_t* q = in + 2;
    const int len = static_cast<int>(std::min<int64_t>(g, k - i0));
    for (int i = 0; i < len; ++i) {
      const int code = (q[i % qbytes] >> (2 * (i / qbytes))) & 3;
      out[i0 + i] = scale * (static_cast<float>(code) - 1.5f);
    }
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
