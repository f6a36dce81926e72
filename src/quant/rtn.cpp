// quant/rtn: round-to-nearest reference quantizers. A group's range [lo, hi]
// becomes an f16 scale and f16 min; codes are chosen against the f16-rounded
// values so dequantize (min + scale * q) reproduces exactly what was measured.
#include "quant/rtn.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>

#include "base/f16.h"

namespace bitlens::quant {
namespace {

static_assert(offsetof(BlockW2G32, q) == 4 && offsetof(BlockW4G64, q) == 4,
              "group blocks start with f16 scale, f16 min");
static_assert(offsetof(BlockW2SG32, q) == 2 && offsetof(BlockW2SG64, q) == 2,
              "stretched blocks start with their f16 scale");

constexpr std::array<float, 71> MakeShrinkGrid() {
  std::array<float, 71> g{};
  for (int i = 0; i < 71; ++i) g[i] = 1.0f - 0.01f * static_cast<float>(i);  // 1.00 .. 0.30
  return g;
}
constexpr std::array<float, 71> kShrinkGrid = MakeShrinkGrid();

// The one dequantize expression, shared by the search and by dequantize so
// the error the search minimizes is the error a reader sees.
inline float DequantAsym(float scale, float min, int q) {
  return min + scale * static_cast<float>(q);
}

inline int CodeAsym(float w, float scale, float min, int qmax) {
  if (!(scale > 0.0f)) return 0;
  const float q = std::nearbyint((w - min) / scale);
  return static_cast<int>(std::clamp(q, 0.0f, static_cast<float>(qmax)));
}

struct GroupParams {
  uint16_t scale_f16;
  uint16_t min_f16;
};

GroupParams ParamsForRange(float lo, float hi, int qmax) {
  return {F32ToF16((hi - lo) / static_cast<float>(qmax)), F32ToF16(lo)};
}

double GroupSquaredError(const float* w, int g, GroupParams p, int qmax) {
  const float scale = F16ToF32(p.scale_f16), min = F16ToF32(p.min_f16);
  double err = 0.0;
  for (int i = 0; i < g; ++i) {
    const double d = static_cast<double>(w[i]) - DequantAsym(scale, min, CodeAsym(w[i], scale, min, qmax));
    err += d * d;
  }
  return err;
}

// Stretched symmetric grid: w ≈ scale * (q - 1.5), q in [0, 3]. The nearest
// grid point to x = w / scale is q = floor(x) + 2, clamped.
inline float DequantStretched(float scale, int q) { return scale * (static_cast<float>(q) - 1.5f); }

inline int CodeStretched(float w, float scale) {
  if (!(scale > 0.0f)) return 0;
  return static_cast<int>(std::clamp(std::floor(w / scale) + 2.0f, 0.0f, 3.0f));
}

double GroupSquaredErrorStretched(const float* w, int g, uint16_t scale_f16) {
  const float scale = F16ToF32(scale_f16);
  double err = 0.0;
  for (int i = 0; i < g; ++i) {
    const double d = static_cast<double>(w[i]) - DequantStretched(scale, CodeStretched(w[i], scale));
    err += d * d;
  }
  return err;
}

}  // namespace

std::span<const float> ClipShrinkGrid() { return kShrinkGrid; }

// Block: [f16 scale][f16 min][g * bits / 8 bytes of codes], see formats.h for
// the interleaving (weight i -> byte i % qbytes, shift bits * (i / qbytes)).
void QuantizeRowGroupAsymRef(const FormatInfo& f, const float* w, int64_t k, RangeSearch search,
                             uint8_t* out) {
  const int g = f.group_size, bits = f.bits, qmax = (1 << bits) - 1;
  const int qbytes = g * bits / 8;
  for (int64_t b = 0; b < k / g; ++b, out += f.block_bytes) {
    const float* x = w + b * g;
    const auto [lo_it, hi_it] = std::minmax_element(x, x + g);
    const float lo = *lo_it, hi = *hi_it;
    GroupParams best = ParamsForRange(lo, hi, qmax);
    if (search == RangeSearch::kMseClip) {
      // Grid search over ranges shrunk about the midpoint (clipping the tails
      // trades a few large errors for a finer step everywhere else).
      double best_err = GroupSquaredError(x, g, best, qmax);
      const float mid = 0.5f * (lo + hi), half = 0.5f * (hi - lo);
      for (float p : kShrinkGrid) {
        const GroupParams cand = ParamsForRange(mid - p * half, mid + p * half, qmax);
        const double err = GroupSquaredError(x, g, cand, qmax);
        if (err < best_err) best_err = err, best = cand;
      }
    }
    std::memcpy(out, &best.scale_f16, 2);
    std::memcpy(out + 2, &best.min_f16, 2);
    const float scale = F16ToF32(best.scale_f16), min = F16ToF32(best.min_f16);
    uint8_t* q = out + 4;
    std::memset(q, 0, static_cast<size_t>(qbytes));
    for (int i = 0; i < g; ++i) {
      q[i % qbytes] |= static_cast<uint8_t>(CodeAsym(x[i], scale, min, qmax) << (bits * (i / qbytes)));
    }
  }
}

void DequantizeRowGroupAsymRef(const FormatInfo& f, const uint8_t* in, int64_t k, float* out) {
  const int g = f.group_size, bits = f.bits, mask = (1 << bits) - 1;
  const int qbytes = g * bits / 8;
  for (int64_t b = 0; b < k / g; ++b, in += f.block_bytes, out += g) {
    uint16_t s16, m16;
    std::memcpy(&s16, in, 2);
    std::memcpy(&m16, in + 2, 2);
    const float scale = F16ToF32(s16), min = F16ToF32(m16);
    const uint8_t* q = in + 4;
    for (int i = 0; i < g; ++i) {
      out[i] = DequantAsym(scale, min, (q[i % qbytes] >> (bits * (i / qbytes))) & mask);
    }
  }
}

// Block: [f16 scale][g / 4 bytes of codes], same interleave as the asymmetric
// 2-bit blocks. Min-max: the outer grid points ±1.5 * scale land on ±max|w|.
void QuantizeRowGroupStretchedRef(const FormatInfo& f, const float* w, int64_t k,
                                  RangeSearch search, uint8_t* out) {
  const int g = f.group_size, qbytes = g / 4;
  for (int64_t b = 0; b < k / g; ++b, out += f.block_bytes) {
    const float* x = w + b * g;
    float amax = 0.0f;
    for (int i = 0; i < g; ++i) amax = std::max(amax, std::fabs(x[i]));
    uint16_t best = F32ToF16(amax / 1.5f);
    if (search == RangeSearch::kMseClip) {
      double best_err = GroupSquaredErrorStretched(x, g, best);
      for (float p : kShrinkGrid) {
        const uint16_t cand = F32ToF16(p * amax / 1.5f);
        const double err = GroupSquaredErrorStretched(x, g, cand);
        if (err < best_err) best_err = err, best = cand;
      }
    }
    std::memcpy(out, &best, 2);
    const float scale = F16ToF32(best);
    uint8_t* q = out + 2;
    std::memset(q, 0, static_cast<size_t>(qbytes));
    for (int i = 0; i < g; ++i) {
      q[i % qbytes] |= static_cast<uint8_t>(CodeStretched(x[i], scale) << (2 * (i / qbytes)));
    }
  }
}

void DequantizeRowGroupStretchedRef(const FormatInfo& f, const uint8_t* in, int64_t k, float* out) {
  const int g = f.group_size, qbytes = g / 4;
  for (int64_t b = 0; b < k / g; ++b, in += f.block_bytes, out += g) {
    uint16_t s16;
    std::memcpy(&s16, in, 2);
    const float scale = F16ToF32(s16);
    const uint8_t* q = in + 2;
    for (int i = 0; i < g; ++i) out[i] = DequantStretched(scale, (q[i % qbytes] >> (2 * (i / qbytes))) & 3);
  }
}

// Row: [f32 scale][k int8], symmetric: scale = max|w| / 127.
void QuantizeRowW8Ref(const FormatInfo&, const float* w, int64_t k, RangeSearch, uint8_t* out) {
  float amax = 0.0f;
  for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(w[i]));
  const float scale = amax / 127.0f;
  std::memcpy(out, &scale, 4);
  int8_t* q = reinterpret_cast<int8_t*>(out + 4);
  for (int64_t i = 0; i < k; ++i) {
    q[i] = scale > 0.0f ? static_cast<int8_t>(std::clamp(std::nearbyint(w[i] / scale), -127.0f, 127.0f))
                        : 0;
  }
}

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
