// quant/grid: every quantized format as per-group affine grids. Choosing a
// row's grids (min-max or MSE clip search), rounding proposals to what the
// format stores, and packing/unpacking codes in the block layouts of formats.h.
#include "quant/grid.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "base/f16.h"

namespace bitlens::quant {
namespace {

constexpr std::array<float, 71> MakeShrinkGrid() {
  std::array<float, 71> g{};
  for (int i = 0; i < 71; ++i) g[i] = 1.0f - 0.01f * static_cast<float>(i);  // 1.00 .. 0.30
  return g;
}
constexpr std::array<float, 71> kShrinkGrid = MakeShrinkGrid();

// Weights [begin, begin + len) of group b in a row of k (the last may be partial).
int64_t GroupBegin(const FormatInfo& f, int64_t b) { return b * f.group_size; }
int GroupLength(const FormatInfo& f, int64_t k, int64_t b) {
  if (f.group_size == 0) return static_cast<int>(k);
  return static_cast<int>(std::min<int64_t>(f.group_size, k - b * f.group_size));
}

inline float RoundToF16(float x) { return F16ToF32(F32ToF16(x)); }

// The grid a format stores for a float proposal, per encoding (no double
// quantization here: that needs the whole super-block, see RoundRowGrids).
GroupGrid RoundGroupGrid(const FormatInfo& f, GroupGrid g) {
  switch (f.encoding) {
    case ScaleEncoding::kF16ScaleMin:
      return {RoundToF16(g.scale), RoundToF16(g.offset)};
    case ScaleEncoding::kF16ScaleStretched: {
      // The offset is not stored: it is always -1.5 scale.
      const float s = RoundToF16(g.scale);
      return {s, -1.5f * s};
    }
    case ScaleEncoding::kF32ScalePerRow:
      return {g.scale, -127.0f * g.scale};  // symmetric int8: offset follows the scale
    case ScaleEncoding::kNone:
      break;
  }
  return g;
}

double GroupSquaredError(const float* w, int len, const GroupGrid& g, int qmax) {
  double err = 0.0;
  for (int i = 0; i < len; ++i) {
    const double d = static_cast<double>(w[i]) - GridValue(g, NearestCode(g, qmax, w[i]));
    err += d * d;
  }
  return err;
}

// Asymmetric grid spanning [lo, hi] with qmax steps.
GroupGrid RangeGrid(float lo, float hi, int qmax) {
  return {(hi - lo) / static_cast<float>(qmax), lo};
}

// Symmetric grids with their largest magnitude `top` at max|w|: the
// stretched grid's ±1.5 scale, w8's ±127 scale.
GroupGrid SymmetricGrid(const FormatInfo& f, float amax) {
  if (f.encoding == ScaleEncoding::kF16ScaleStretched) return {amax / 1.5f, 0.0f};
  return {amax / 127.0f, 0.0f};
}

GroupGrid ChooseGroupGrid(const FormatInfo& f, const float* w, int len, RangeSearch search) {
  const int qmax = QMax(f);
  if (f.encoding == ScaleEncoding::kF16ScaleMin) {
    const auto [lo_it, hi_it] = std::minmax_element(w, w + len);
    const float lo = *lo_it, hi = *hi_it;
    GroupGrid best = RoundGroupGrid(f, RangeGrid(lo, hi, qmax));
    if (search == RangeSearch::kMseClip) {
      // Ranges shrunk about the midpoint: clipping the tails trades a few
      // large errors for a finer step everywhere else.
      double best_err = GroupSquaredError(w, len, best, qmax);
      const float mid = 0.5f * (lo + hi), half = 0.5f * (hi - lo);
      for (float p : kShrinkGrid) {
        const GroupGrid cand = RoundGroupGrid(f, RangeGrid(mid - p * half, mid + p * half, qmax));
        const double err = GroupSquaredError(w, len, cand, qmax);
        if (err < best_err) best_err = err, best = cand;
      }
    }
    return best;
  }
  float amax = 0.0f;
  for (int i = 0; i < len; ++i) amax = std::max(amax, std::fabs(w[i]));
  GroupGrid best = RoundGroupGrid(f, SymmetricGrid(f, amax));
  // w8 is per row and keeps min-max: at 8 bits clipping gains little.
  if (search == RangeSearch::kMseClip && f.group_size > 0) {
    double best_err = GroupSquaredError(w, len, best, qmax);
    for (float p : kShrinkGrid) {
      const GroupGrid cand = RoundGroupGrid(f, SymmetricGrid(f, p * amax));
      const double err = GroupSquaredError(w, len, cand, qmax);
      if (err < best_err) best_err = err, best = cand;
    }
  }
  return best;
}

// ---- Code planes. A block of bw weights stores b-bit codes (or one b-bit
// slice of wider codes) in a plane of bw·b/8 bytes: weight i sits in byte
// i % (bw·b/8) at bit b·(i / (bw·b/8)), so one shift-and-mask over the plane
// yields a contiguous run of weights.
void PackPlane(const uint8_t* codes, int valid, int bw, int plane_bits, int code_shift,
               uint8_t* plane) {
  const int plane_bytes = bw * plane_bits / 8, mask = (1 << plane_bits) - 1;
  std::memset(plane, 0, static_cast<size_t>(plane_bytes));
  for (int i = 0; i < valid; ++i) {
    plane[i % plane_bytes] |=
        static_cast<uint8_t>(((codes[i] >> code_shift) & mask) << (plane_bits * (i / plane_bytes)));
  }
}

void UnpackPlane(const uint8_t* plane, int valid, int bw, int plane_bits, int code_shift,
                 uint8_t* codes) {
  const int plane_bytes = bw * plane_bits / 8, mask = (1 << plane_bits) - 1;
  for (int i = 0; i < valid; ++i) {
    codes[i] |= static_cast<uint8_t>(((plane[i % plane_bytes] >> (plane_bits * (i / plane_bytes))) & mask)
                                     << code_shift);
  }
}

void PutF16(uint8_t* at, float x) {
  const uint16_t h = F32ToF16(x);
  std::memcpy(at, &h, 2);
}
float GetF16(const uint8_t* at) {
  uint16_t h;
  std::memcpy(&h, at, 2);
  return F16ToF32(h);
}

}  // namespace

std::span<const float> ClipShrinkGrid() { return kShrinkGrid; }

bool HasGrid(const FormatInfo& f) { return f.encoding != ScaleEncoding::kNone; }

int QMax(const FormatInfo& f) {
  switch (f.encoding) {
    case ScaleEncoding::kF32ScalePerRow:
      return 254;
    case ScaleEncoding::kNone:
      return 0;
    default:
      return (1 << f.bits) - 1;
  }
}

int64_t NumGroups(const FormatInfo& f, int64_t k) {
  if (!HasGrid(f)) return 0;
  if (f.group_size == 0) return 1;
  return (k + f.group_size - 1) / f.group_size;
}

void ChooseRowGrids(const FormatInfo& f, const float* w, int64_t k, RangeSearch search,
                    GroupGrid* grids) {
  const int64_t groups = NumGroups(f, k);
  for (int64_t b = 0; b < groups; ++b) {
    grids[b] = ChooseGroupGrid(f, w + GroupBegin(f, b), GroupLength(f, k, b), search);
  }
}

void RoundRowGrids(const FormatInfo& f, int64_t k, GroupGrid* grids) {
  const int64_t groups = NumGroups(f, k);
  for (int64_t b = 0; b < groups; ++b) grids[b] = RoundGroupGrid(f, grids[b]);
}

uint8_t NearestCode(const GroupGrid& grid, int qmax, float w) {
  if (grid.scale == 0.0f || !std::isfinite(grid.scale)) return 0;
  // In f64 so that the code is the nearest for the grid as stored, not for an
  // f32-rounded quotient (w8's 127 + w/scale would lose 7 bits).
  const double q = std::round((static_cast<double>(w) - grid.offset) / grid.scale);
  if (!(q > 0.0)) return 0;  // also NaN
  return static_cast<uint8_t>(std::min(q, static_cast<double>(qmax)));
}

// Block layouts: see formats.h. Codes of a partial last block past k are 0.
void EncodeRow(const FormatInfo& f, const GroupGrid* grids, const uint8_t* codes, int64_t k,
               uint8_t* out) {
  switch (f.encoding) {
    case ScaleEncoding::kF16ScaleMin:
    case ScaleEncoding::kF16ScaleStretched: {
      const bool has_min = f.encoding == ScaleEncoding::kF16ScaleMin;
      const int header = has_min ? 4 : 2;
      for (int64_t b = 0; b < NumGroups(f, k); ++b, out += f.block_bytes) {
        PutF16(out, grids[b].scale);
        if (has_min) PutF16(out + 2, grids[b].offset);
        PackPlane(codes + GroupBegin(f, b), GroupLength(f, k, b), f.group_size, f.bits, 0,
                  out + header);
      }
      return;
    }
    case ScaleEncoding::kF32ScalePerRow: {
      std::memcpy(out, &grids[0].scale, 4);
      for (int64_t i = 0; i < k; ++i) out[4 + i] = static_cast<uint8_t>(static_cast<int8_t>(codes[i] - 127));
      return;
    }
    case ScaleEncoding::kNone:
      return;
  }
}

void DecodeRow(const FormatInfo& f, const uint8_t* row, int64_t k, GroupGrid* grids,
               uint8_t* codes) {
  switch (f.encoding) {
    case ScaleEncoding::kF16ScaleMin:
    case ScaleEncoding::kF16ScaleStretched: {
      const bool has_min = f.encoding == ScaleEncoding::kF16ScaleMin;
      for (int64_t b = 0; b < NumGroups(f, k); ++b, row += f.block_bytes) {
        const float scale = GetF16(row);
        grids[b] = {scale, has_min ? GetF16(row + 2) : -1.5f * scale};
        uint8_t* c = codes + GroupBegin(f, b);
        const int len = GroupLength(f, k, b);
        std::memset(c, 0, static_cast<size_t>(len));
        UnpackPlane(row + (has_min ? 4 : 2), len, f.group_size, f.bits, 0, c);
      }
      return;
    }
    case ScaleEncoding::kF32ScalePerRow: {
      float scale;
      std::memcpy(&scale, row, 4);
      grids[0] = {scale, -127.0f * scale};
      for (int64_t i = 0; i < k; ++i) codes[i] = static_cast<uint8_t>(static_cast<int8_t>(row[4 + i]) + 127);
      return;
    }
    case ScaleEncoding::kNone:
      return;
  }
}

}  // namespace bitlens::quant
