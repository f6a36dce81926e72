// train/fake_quant: quantize→dequantize of a weight matrix under learnable
// per-group grids, bit-exact with the deployed format's dequantization, and
// its straight-through (weights) and LSQ (scales, offsets) backward.
#include "train/fake_quant.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "base/thread_pool.h"

namespace bitlens::train {
namespace {

using quant::FormatInfo;
using quant::GroupGrid;
using quant::ScaleEncoding;

// Formats whose offset is not stored but follows the scale: offset = −c·scale
// (stretched 2-bit c = 1.5, ternary c = 1, w8 c = 127). Their offset is not a
// free parameter; its gradient is folded into the scale's.
bool OffsetTiedToScale(const FormatInfo& f) {
  return f.encoding == ScaleEncoding::kF16ScaleStretched || f.encoding == ScaleEncoding::kF16ScaleTernary ||
         f.encoding == ScaleEncoding::kF32ScalePerRow;
}
float TiedCentre(const FormatInfo& f) {
  switch (f.encoding) {
    case ScaleEncoding::kF16ScaleStretched:
      return 1.5f;
    case ScaleEncoding::kF16ScaleTernary:
      return 1.0f;
    default:
      return 127.0f;
  }
}

// The grids of row r as the format stores them: the learnable float grids
// rounded through quant::RoundRowGrids (f16, or double quantization per
// super-block). A negative learnable scale is used as 0 (a collapsed grid):
// the deployed grids always walk upwards. grids_out: G entries.
void RoundedRow(const FakeQuantGrids& g, int64_t r, GroupGrid* grids_out) {
  const int64_t groups = quant::NumGroups(*g.format, g.k);
  for (int64_t j = 0; j < groups; ++j) {
    const size_t i = static_cast<size_t>(r * groups + j);
    grids_out[j] = {std::max(g.scale[i], 0.0f), g.offset[i]};
  }
  quant::RoundRowGrids(*g.format, g.k, grids_out);
}

// The deployed dequantization of `code` under a stored grid, in exactly the
// f32 operations of the format's reference reader (quant/rtn.cpp): w8 and
// the symmetric formats multiply the scale by the centred code, the affine
// formats add offset + scale·q. This is what makes wq bit-exact.
inline float DequantValue(const FormatInfo& f, const GroupGrid& grid, int code) {
  switch (f.encoding) {
    case ScaleEncoding::kF16ScaleStretched:
      return grid.scale * (static_cast<float>(code) - 1.5f);
    case ScaleEncoding::kF16ScaleTernary:
      return grid.scale * static_cast<float>(code - 1);
    case ScaleEncoding::kF32ScalePerRow:
      return grid.scale * static_cast<float>(code - 127);
    default:
      return grid.offset + grid.scale * static_cast<float>(code);
  }
}

inline int64_t GroupOf(const FormatInfo& f, int64_t i) { return f.group_size == 0 ? 0 : i / f.group_size; }

Status CheckGridFormat(const FormatInfo& format, int64_t n, int64_t k) {
  if (!quant::HasGrid(format)) {
    return InvalidArgument(std::string("fake quantization: format ") + format.name +
                           " has no grid (passthrough); nothing to learn");
  }
  if (n <= 0) return InvalidArgument("fake quantization: row count n=" + std::to_string(n) + " must be positive");
  return quant::CheckRowLength(format, k);
}

FakeQuantGrids EmptyGrids(const FormatInfo& format, int64_t n, int64_t k) {
  FakeQuantGrids g;
  g.format = &format;
  g.n = n, g.k = k;
  const size_t count = static_cast<size_t>(n * quant::NumGroups(format, k));
  g.scale.assign(count, 0.0f);
  g.offset.assign(count, 0.0f);
  g.dscale.assign(count, 0.0f);
  g.doffset.assign(count, 0.0f);
  return g;
}

// Rows split over the thread pool (as the train ops split theirs, so call it
// from outside a ParallelFor: the pool does not nest); each chunk rounds its
// rows' grids into its own scratch, and rows own disjoint grads.
template <typename RowFn>
void ForEachRow(const FakeQuantGrids& g, RowFn row_fn) {
  const int64_t groups = quant::NumGroups(*g.format, g.k);
  ParallelFor(static_cast<size_t>(g.n), 1, [&](size_t begin, size_t end, size_t) {
    std::vector<GroupGrid> grids(static_cast<size_t>(groups));
    for (size_t r = begin; r < end; ++r) {
      RoundedRow(g, static_cast<int64_t>(r), grids.data());
      row_fn(static_cast<int64_t>(r), grids.data());
    }
  });
}

}  // namespace

Result<FakeQuantGrids> InitGridsRtn(const quant::FormatInfo& format, const float* w, int64_t n, int64_t k) {
  BL_TRY(CheckGridFormat(format, n, k));
  FakeQuantGrids g = EmptyGrids(format, n, k);
  const int64_t groups = quant::NumGroups(format, k);
  ParallelFor(static_cast<size_t>(n), 1, [&](size_t begin, size_t end, size_t) {
    std::vector<GroupGrid> grids(static_cast<size_t>(groups));
    for (size_t r = begin; r < end; ++r) {
      quant::ChooseRowGrids(format, w + r * k, k, quant::RangeSearch::kMseClip, grids.data());
      for (int64_t j = 0; j < groups; ++j) {
        g.scale[r * groups + j] = grids[j].scale;
        g.offset[r * groups + j] = grids[j].offset;
      }
    }
  });
  return g;
}

Result<FakeQuantGrids> InitGridsFromPacked(const quant::FormatInfo& format, const uint8_t* packed, int64_t n,
                                           int64_t k) {
  BL_TRY(CheckGridFormat(format, n, k));
  FakeQuantGrids g = EmptyGrids(format, n, k);
  const int64_t groups = quant::NumGroups(format, k);
  const size_t row_bytes = quant::RowBytes(format, k);
  std::vector<GroupGrid> grids(static_cast<size_t>(groups));
  std::vector<uint8_t> codes(static_cast<size_t>(k));
  for (int64_t r = 0; r < n; ++r) {
    quant::DecodeRow(format, packed + r * row_bytes, k, grids.data(), codes.data());
    for (int64_t j = 0; j < groups; ++j) {
      g.scale[r * groups + j] = grids[j].scale;
      g.offset[r * groups + j] = grids[j].offset;
    }
  }
  return g;
}

// w [n, k] → wq [n, k]: the nearest code under the stored grid (quant::NearestCode,
// the same choice RTN makes), read back as the deployed reader does.
void FakeQuantForward(const FakeQuantGrids& grids, const float* w, float* wq) {
  const FormatInfo& f = *grids.format;
  const int qmax = quant::QMax(f);
  const int64_t k = grids.k;
  ForEachRow(grids, [&](int64_t r, const GroupGrid* g) {
    const float* wr = w + r * k;
    float* out = wq + r * k;
    for (int64_t i = 0; i < k; ++i) {
      const GroupGrid& gi = g[GroupOf(f, i)];
      out[i] = DequantValue(f, gi, quant::NearestCode(gi, qmax, wr[i]));
    }
  });
}

// Backward of wq = o + s·clamp(round(x), 0, qmax), x = (w − o)/s, with the
// grid (s, o) as stored. round() passes gradients straight through (STE), and
// so does the rounding of the learnable grid to the stored precision (f16,
// or the 4-bit codes of double quantization): ∂stored/∂learnable := 1.
//   inside the grid's range (0 ≤ x ≤ qmax, i.e. o ≤ w ≤ o + qmax·s):
//     wq ≈ o + s·x_rounded, ∂round(x)/∂x := 1, ∂x/∂s = −x/s, ∂x/∂o = −1/s, so
//     ∂wq/∂w = 1
//     ∂wq/∂s = q + s·(−x/s) = q − x         (LSQ, Esser et al. 2020, eq. 3:
//                                            the rounding error, signed)
//     ∂wq/∂o = 1 + s·(−1/s) = 0
//   clamped (x < 0 → q = 0; x > qmax → q = qmax): wq = o + s·q with q fixed,
//     ∂wq/∂w = 0,  ∂wq/∂s = q,  ∂wq/∂o = 1.
// Formats with a tied offset o = −c·s (stretched, ternary, w8) have only s:
// ∂wq/∂s + (−c)·∂wq/∂o, i.e. q − x inside and q − c when clamped.
// No LSQ gradient scale 1/sqrt(N·qmax) is applied here: that is a learning-
// rate choice and belongs to the optimizer's parameter groups.
void FakeQuantBackward(FakeQuantGrids& grids, const float* w, const float* dwq, float* dw) {
  const FormatInfo& f = *grids.format;
  const int qmax = quant::QMax(f);
  const int64_t k = grids.k, groups = quant::NumGroups(f, k);
  const bool tied = OffsetTiedToScale(f);
  const double centre = tied ? TiedCentre(f) : 0.0;
  ForEachRow(grids, [&](int64_t r, const GroupGrid* g) {
    const float* wr = w + r * k;
    const float* gr = dwq + r * k;
    float* dwr = dw ? dw + r * k : nullptr;
    // Per group in f64: a group sums up to 256 terms of either sign.
    for (int64_t j = 0; j < groups; ++j) {
      const int64_t i0 = f.group_size == 0 ? 0 : j * f.group_size;
      const int64_t i1 = f.group_size == 0 ? k : std::min<int64_t>(k, i0 + f.group_size);
      const GroupGrid& gj = g[j];
      double ds = 0.0, doff = 0.0;
      for (int64_t i = i0; i < i1; ++i) {
        const double gi = gr[i];
        const double s = gj.scale;
        bool inside;
        double dq_ds;
        if (s > 0.0 && std::isfinite(s)) {
          const double x = (static_cast<double>(wr[i]) - gj.offset) / s;
          const int q = quant::NearestCode(gj, qmax, wr[i]);
          inside = x >= 0.0 && x <= qmax;
          dq_ds = inside ? q - x : q;
        } else {
          // Collapsed grid (s = 0: every code 0, wq = o). The derivatives are
          // the limits s → 0+, where a weight above o is clamped at qmax: so
          // a collapsed group can grow its scale again.
          const double d = static_cast<double>(wr[i]) - gj.offset;
          inside = d == 0.0;
          dq_ds = d > 0.0 ? qmax : 0.0;
        }
        if (dwr && inside) dwr[i] += gr[i];
        ds += gi * dq_ds;
        if (!inside) doff += gi;
      }
      const size_t at = static_cast<size_t>(r * groups + j);
      if (tied) {
        grids.dscale[at] += static_cast<float>(ds - centre * doff);
      } else {
        grids.dscale[at] += static_cast<float>(ds);
        grids.doffset[at] += static_cast<float>(doff);
      }
    }
  });
}

void PackWithGrids(const FakeQuantGrids& grids, const float* w, uint8_t* out) {
  const FormatInfo& f = *grids.format;
  const int qmax = quant::QMax(f);
  const int64_t k = grids.k;
  const size_t row_bytes = quant::RowBytes(f, k);
  ForEachRow(grids, [&](int64_t r, const GroupGrid* g) {
    std::vector<uint8_t> codes(static_cast<size_t>(k));
    const float* wr = w + r * k;
    for (int64_t i = 0; i < k; ++i) codes[i] = quant::NearestCode(g[GroupOf(f, i)], qmax, wr[i]);
    quant::EncodeRow(f, g, codes.data(), k, out + r * row_bytes);
  });
}

}  // namespace bitlens::train
