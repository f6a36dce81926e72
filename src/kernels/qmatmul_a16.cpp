// kernels/qmatmul_a16: W·A16 GEMV/GEMM over packed weights read in place.
// Each group block's grid (scale, offset) is widened once; codes become f32
// weights in registers (by a 16-entry table lookup on AVX-512, by convert and
// multiply-add elsewhere) and meet MR x rows with f32 FMAs.
//
// Shapes: x [m, k] f32, w n rows of RowBytes(f, k) bytes, y [m, n] f32.
// Decode (m = 1) walks one weight row at a time with four accumulators (four
// independent FMA chains); prefill (m > 1) decodes each block once per MR x
// rows, with x blocked so a block of rows stays in L2.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qmatmul_a16.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/cache_control.h"
#include "hwy/highway.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "base/f16.h"
#include "kernels/qmatmul_a16.h"

#ifndef BITLENS_KERNELS_QMATMUL_A16_ONCE
#define BITLENS_KERNELS_QMATMUL_A16_ONCE
namespace bitlens::kernels {
// The code layouts with a kernel; the formats they serve are listed in
// kA16Formats below.
enum class A16Kernel : int { kNone, kW2G32, kW2G64, kW2G128, kW2SG32, kW2SG64, kW4G32, kW4G64, kW8 };
}  // namespace bitlens::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace bitlens::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// A group block of quant/formats.h: [f16 scale][f16 min, unless stretched]
// [g·bits/8 code bytes]; weight i of the group is in byte i % kPlaneBytes at
// bit bits·(i / kPlaneBytes), so each "plane" of kPlaneBytes weights is one
// shift-and-mask over the code bytes. Stretched: w = scale·(q − 1.5), i.e.
// offset −1.5·scale (exact in f32 for an f16 scale).
template <int kBitsT, int kGroupT, bool kStretchedT>
struct GroupLayout {
  static constexpr int kBits = kBitsT;
  static constexpr int kGroup = kGroupT;
  static constexpr bool kStretched = kStretchedT;
  static constexpr int kHeaderBytes = kStretched ? 2 : 4;
  static constexpr int kPlaneBytes = kGroup * kBits / 8;
  static constexpr int kBlockBytes = kHeaderBytes + kPlaneBytes;
  static constexpr uint32_t kMask = (1u << kBits) - 1;
};

// How far ahead decode prefetches the weight stream.
constexpr int64_t kPrefetchBytes = 1024;

template <class D>
HWY_INLINE hn::Vec<D> HalfToVec(D d, uint16_t bits) {
  const hn::Rebind<uint16_t, D> du16;
  const hn::Rebind<hwy::float16_t, D> df16;
  return hn::PromoteTo(d, hn::BitCast(df16, hn::Set(du16, bits)));
}

// The block's grid, broadcast: value(q) = offset + scale·q.
template <class L, class D>
HWY_INLINE void BlockGrid(D d, const uint8_t* HWY_RESTRICT blk, hn::Vec<D>& scale, hn::Vec<D>& offset) {
  uint16_t s16;
  std::memcpy(&s16, blk, 2);
  scale = HalfToVec(d, s16);
  if constexpr (L::kStretched) {
    offset = hn::Mul(scale, hn::Set(d, -1.5f));
  } else {
    uint16_t m16;
    std::memcpy(&m16, blk + 2, 2);
    offset = HalfToVec(d, m16);
  }
}

// r_i = x_i[0..N) · w + r_i for the MR x rows starting at x (row stride k).
template <int MR, class D>
HWY_INLINE void Fma(D d, const float* HWY_RESTRICT x, int64_t k, hn::Vec<D> w, hn::Vec<D>& r0, hn::Vec<D>& r1,
                    hn::Vec<D>& r2, hn::Vec<D>& r3) {
  r0 = hn::MulAdd(hn::LoadU(d, x), w, r0);
  if constexpr (MR > 1) r1 = hn::MulAdd(hn::LoadU(d, x + k), w, r1);
  if constexpr (MR > 2) r2 = hn::MulAdd(hn::LoadU(d, x + 2 * k), w, r2);
  if constexpr (MR > 3) r3 = hn::MulAdd(hn::LoadU(d, x + 3 * k), w, r3);
}

// Codes of plane p from N code bytes widened to u32: (u >> bits·p) & mask, as f32.
template <int kShift, class L, class D>
HWY_INLINE hn::Vec<D> PlaneCodes(D d, hn::Vec<hn::RebindToUnsigned<D>> u) {
  const hn::RebindToUnsigned<D> du;
  const hn::RebindToSigned<D> di;
  auto c = hn::ShiftRight<kShift>(u);
  if constexpr (kShift + L::kBits < 8) c = hn::And(c, hn::Set(du, L::kMask));
  return hn::ConvertTo(d, hn::BitCast(di, c));
}

// Σ over the partial last block of a row (ragged k): weights nb·g .. k−1, in
// order, scalar. Returns 0 when k is a multiple of the group.
template <class L>
HWY_INLINE float GroupTail(const uint8_t* HWY_RESTRICT row, const float* HWY_RESTRICT x, int64_t k) {
  const int64_t nb = k / L::kGroup, rem = k - nb * L::kGroup;
  if (rem == 0) return 0.0f;
  const uint8_t* blk = row + nb * L::kBlockBytes;
  const uint8_t* q = blk + L::kHeaderBytes;
  uint16_t s16, m16 = 0;
  std::memcpy(&s16, blk, 2);
  if constexpr (!L::kStretched) std::memcpy(&m16, blk + 2, 2);
  const float scale = F16ToF32(s16);
  const float offset = L::kStretched ? -1.5f * scale : F16ToF32(m16);
  const float* xb = x + nb * L::kGroup;
  float sum = 0.0f;
  for (int64_t i = 0; i < rem; ++i) {
    const uint32_t code = (q[i % L::kPlaneBytes] >> (L::kBits * (i / L::kPlaneBytes))) & L::kMask;
    sum += xb[i] * (offset + scale * static_cast<float>(code));
  }
  return sum;
}

// Lane sum of one output's four accumulators, then the scalar tail and bias.
template <class D>
HWY_INLINE float Finish(D d, hn::Vec<D> r0, hn::Vec<D> r1, hn::Vec<D> r2, hn::Vec<D> r3, float tail, float scale,
                        const float* bias, int64_t o) {
  float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(r0, r1), hn::Add(r2, r3))));
  sum = scale * (sum + tail);  // scale is 1 for group formats (exact)
  if (bias) sum += bias[o];
  return sum;
}

// One weight row (row) against MR x rows (x, stride k); writes y[i·n] for
// i < MR (y points at y[r0, o]). kTable: the 16-lane table-lookup decode
// (needs exactly 16 lanes and kPlaneBytes a multiple of 16).
// Accumulator slots: 2-bit planes 0..3 go to slots 0..3; 4-bit planes 0, 1
// of the c-th chunk along the row go to slots 0, 1 (c even) or 2, 3 (c odd).
template <int MR, class L, bool kTable, class D>
HWY_INLINE void GroupTile(D d, const float* HWY_RESTRICT x, int64_t k, const uint8_t* HWY_RESTRICT row,
                          const float* bias, int64_t o, int64_t n, float* HWY_RESTRICT y) {
  using V = hn::Vec<D>;
  const hn::RebindToUnsigned<D> du;
  const hn::RebindToSigned<D> di;
  const hn::Rebind<uint8_t, D> d8;
  constexpr int64_t P = L::kPlaneBytes;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t nb = k / L::kGroup;
  V a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;  // x row 0, slots 0..3
  V b0 = a0, b1 = a0, b2 = a0, b3 = a0;           // x row 1
  V c0 = a0, c1 = a0, c2 = a0, c3 = a0;           // x row 2
  V e0 = a0, e1 = a0, e2 = a0, e3 = a0;           // x row 3
  // Table decode: lane j of the table holds the weight of code j & 3 (lo)
  // or j >> 2 (hi) for 2-bit, so a nibble (two 2-bit codes) indexes both;
  // 4-bit: lane j holds the weight of code j.
  const V iota = hn::ConvertTo(d, hn::BitCast(di, hn::Iota(du, 0)));
  const V code_lo = hn::ConvertTo(d, hn::BitCast(di, hn::And(hn::Iota(du, 0), hn::Set(du, 3u))));
  const V code_hi = hn::ConvertTo(d, hn::BitCast(di, hn::ShiftRight<2>(hn::Iota(du, 0))));
  int64_t chunk = 0;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* HWY_RESTRICT blk = row + b * L::kBlockBytes;
    if constexpr (MR == 1) hwy::Prefetch(blk + kPrefetchBytes);
    const uint8_t* HWY_RESTRICT q = blk + L::kHeaderBytes;
    const float* HWY_RESTRICT xb = x + b * L::kGroup;
    V scale, offset;
    BlockGrid<L>(d, blk, scale, offset);
    if constexpr (kTable && L::kBits == 2) {
      const V t_lo = hn::MulAdd(code_lo, scale, offset), t_hi = hn::MulAdd(code_hi, scale, offset);
      for (int64_t j = 0; j < P; j += N) {
        const auto bytes = hn::LoadU(d8, q + j);
        const auto lo = hn::IndicesFromVec(d, hn::BitCast(di, hn::PromoteTo(du, hn::And(bytes, hn::Set(d8, 0x0F)))));
        const auto hi = hn::IndicesFromVec(d, hn::BitCast(di, hn::PromoteTo(du, hn::ShiftRight<4>(bytes))));
        Fma<MR>(d, xb + j, k, hn::TableLookupLanes(t_lo, lo), a0, b0, c0, e0);
        Fma<MR>(d, xb + P + j, k, hn::TableLookupLanes(t_hi, lo), a1, b1, c1, e1);
        Fma<MR>(d, xb + 2 * P + j, k, hn::TableLookupLanes(t_lo, hi), a2, b2, c2, e2);
        Fma<MR>(d, xb + 3 * P + j, k, hn::TableLookupLanes(t_hi, hi), a3, b3, c3, e3);
      }
    } else if constexpr (kTable) {  // 4-bit
      const V t = hn::MulAdd(iota, scale, offset);
      for (int64_t j = 0; j < P; j += N, ++chunk) {
        const auto bytes = hn::LoadU(d8, q + j);
        const auto lo = hn::IndicesFromVec(d, hn::BitCast(di, hn::PromoteTo(du, hn::And(bytes, hn::Set(d8, 0x0F)))));
        const auto hi = hn::IndicesFromVec(d, hn::BitCast(di, hn::PromoteTo(du, hn::ShiftRight<4>(bytes))));
        const V w0 = hn::TableLookupLanes(t, lo), w1 = hn::TableLookupLanes(t, hi);
        if (chunk & 1) {
          Fma<MR>(d, xb + j, k, w0, a2, b2, c2, e2);
          Fma<MR>(d, xb + P + j, k, w1, a3, b3, c3, e3);
        } else {
          Fma<MR>(d, xb + j, k, w0, a0, b0, c0, e0);
          Fma<MR>(d, xb + P + j, k, w1, a1, b1, c1, e1);
        }
      }
    } else if constexpr (L::kBits == 2) {
      for (int64_t j = 0; j < P; j += N) {
        const auto u = hn::PromoteTo(du, hn::LoadU(d8, q + j));
        Fma<MR>(d, xb + j, k, hn::MulAdd(PlaneCodes<0, L>(d, u), scale, offset), a0, b0, c0, e0);
        Fma<MR>(d, xb + P + j, k, hn::MulAdd(PlaneCodes<2, L>(d, u), scale, offset), a1, b1, c1, e1);
        Fma<MR>(d, xb + 2 * P + j, k, hn::MulAdd(PlaneCodes<4, L>(d, u), scale, offset), a2, b2, c2, e2);
        Fma<MR>(d, xb + 3 * P + j, k, hn::MulAdd(PlaneCodes<6, L>(d, u), scale, offset), a3, b3, c3, e3);
      }
    } else {  // 4-bit
      for (int64_t j = 0; j < P; j += N, ++chunk) {
        const auto u = hn::PromoteTo(du, hn::LoadU(d8, q + j));
        const V w0 = hn::MulAdd(PlaneCodes<0, L>(d, u), scale, offset);
        const V w1 = hn::MulAdd(PlaneCodes<4, L>(d, u), scale, offset);
        if (chunk & 1) {
          Fma<MR>(d, xb + j, k, w0, a2, b2, c2, e2);
          Fma<MR>(d, xb + P + j, k, w1, a3, b3, c3, e3);
        } else {
          Fma<MR>(d, xb + j, k, w0, a0, b0, c0, e0);
          Fma<MR>(d, xb + P + j, k, w1, a1, b1, c1, e1);
        }
      }
    }
  }
  y[0] = Finish(d, a0, a1, a2, a3, GroupTail<L>(row, x, k), 1.0f, bias, o);
  if constexpr (MR > 1) y[n] = Finish(d, b0, b1, b2, b3, GroupTail<L>(row, x + k, k), 1.0f, bias, o);
  if constexpr (MR > 2) y[2 * n] = Finish(d, c0, c1, c2, c3, GroupTail<L>(row, x + 2 * k, k), 1.0f, bias, o);
  if constexpr (MR > 3) y[3 * n] = Finish(d, e0, e1, e2, e3, GroupTail<L>(row, x + 3 * k, k), 1.0f, bias, o);
}

// w8 row: [f32 scale][k int8]; Σ x·q in f32 (q exact), times the scale.
// Chunk c of N weights goes to slot c % 4.
template <int MR, class D>
HWY_INLINE void W8Tile(D d, const float* HWY_RESTRICT x, int64_t k, const uint8_t* HWY_RESTRICT row,
                       const float* bias, int64_t o, int64_t n, float* HWY_RESTRICT y) {
  using V = hn::Vec<D>;
  const hn::RebindToSigned<D> di;
  const hn::Rebind<int8_t, D> d8;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  float scale;
  std::memcpy(&scale, row, 4);
  const int8_t* HWY_RESTRICT q = reinterpret_cast<const int8_t*>(row + 4);
  const int64_t k_vec = k - k % N;
  V a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
  V b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  V c0 = a0, c1 = a0, c2 = a0, c3 = a0;
  V e0 = a0, e1 = a0, e2 = a0, e3 = a0;
  auto codes = [&](int64_t i) { return hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, q + i))); };
  int64_t i = 0;
  for (; i + 4 * N <= k_vec; i += 4 * N) {
    if constexpr (MR == 1) hwy::Prefetch(q + i + kPrefetchBytes);
    Fma<MR>(d, x + i, k, codes(i), a0, b0, c0, e0);
    Fma<MR>(d, x + i + N, k, codes(i + N), a1, b1, c1, e1);
    Fma<MR>(d, x + i + 2 * N, k, codes(i + 2 * N), a2, b2, c2, e2);
    Fma<MR>(d, x + i + 3 * N, k, codes(i + 3 * N), a3, b3, c3, e3);
  }
  if (i < k_vec) Fma<MR>(d, x + i, k, codes(i), a0, b0, c0, e0), i += N;
  if (i < k_vec) Fma<MR>(d, x + i, k, codes(i), a1, b1, c1, e1), i += N;
  if (i < k_vec) Fma<MR>(d, x + i, k, codes(i), a2, b2, c2, e2), i += N;
  auto tail = [&](const float* xr) {
    float s = 0.0f;
    for (int64_t t = k_vec; t < k; ++t) s += xr[t] * static_cast<float>(q[t]);
    return s;
  };
  y[0] = Finish(d, a0, a1, a2, a3, tail(x), scale, bias, o);
  if constexpr (MR > 1) y[n] = Finish(d, b0, b1, b2, b3, tail(x + k), scale, bias, o);
  if constexpr (MR > 2) y[2 * n] = Finish(d, c0, c1, c2, c3, tail(x + 2 * k), scale, bias, o);
  if constexpr (MR > 3) y[3 * n] = Finish(d, e0, e1, e2, e3, tail(x + 3 * k), scale, bias, o);
}

// x rows per prefill tile: 4 on targets with 32 vector registers (16
// accumulators plus operands fit), 2 on 16-register targets (AVX2, SSE).
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3) || HWY_ARCH_ARM
constexpr int kGemmMR = 4;
#else
constexpr int kGemmMR = 2;
#endif

// Calls tile<MR>(x rows r.., weight row o) over output rows [o_begin, o_end):
// decode row by row; prefill in x blocks of up to 64 rows (~256 KiB) so a
// block stays in L2 while each weight row (in L1) meets all of its rows.
template <class TileFn>
HWY_INLINE void ForEachTile(const float* x, int64_t m, int64_t k, int64_t n, int64_t o_begin, int64_t o_end,
                            const TileFn& tile) {
  if (m == 1) {
    for (int64_t o = o_begin; o < o_end; ++o) tile(std::integral_constant<int, 1>(), 0, o);
    return;
  }
  constexpr int MR = kGemmMR;
  constexpr int64_t kBlockBytes = 256 * 1024;
  const int64_t block_rows =
      std::max<int64_t>(MR, std::min<int64_t>(64, kBlockBytes / (4 * std::max<int64_t>(k, 1))) / MR * MR);
  for (int64_t r0 = 0; r0 < m; r0 += block_rows) {
    const int64_t r1 = std::min(m, r0 + block_rows);
    for (int64_t o = o_begin; o < o_end; ++o) {
      int64_t r = r0;
      for (; r + MR <= r1; r += MR) tile(std::integral_constant<int, MR>(), r, o);
      const int64_t rest = r1 - r;
      if (rest == 3) tile(std::integral_constant<int, 3>(), r, o);
      if (rest == 2) tile(std::integral_constant<int, 2>(), r, o);
      if (rest == 1) tile(std::integral_constant<int, 1>(), r, o);
    }
  }
}

template <class L>
void GroupRows(const float* x, int64_t m, const uint8_t* w, size_t row_bytes, int64_t n, int64_t k,
               const float* bias, int64_t o_begin, int64_t o_end, float* y) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  constexpr bool kTable = L::kPlaneBytes % 16 == 0;
  using D = std::conditional_t<kTable, hn::FixedTag<float, 16>, hn::CappedTag<float, L::kPlaneBytes>>;
#else
  constexpr bool kTable = false;
  using D = hn::CappedTag<float, L::kPlaneBytes>;
#endif
  const D d;
  auto tile = [&](auto mr, int64_t r, int64_t o) {
    GroupTile<decltype(mr)::value, L, kTable>(d, x + r * k, k, w + static_cast<size_t>(o) * row_bytes, bias, o, n,
                                              y + r * n + o);
  };
  ForEachTile(x, m, k, n, o_begin, o_end, tile);
}

void W8Rows(const float* x, int64_t m, const uint8_t* w, size_t row_bytes, int64_t n, int64_t k, const float* bias,
            int64_t o_begin, int64_t o_end, float* y) {
  const hn::ScalableTag<float> d;
  auto tile = [&](auto mr, int64_t r, int64_t o) {
    W8Tile<decltype(mr)::value>(d, x + r * k, k, w + static_cast<size_t>(o) * row_bytes, bias, o, n, y + r * n + o);
  };
  ForEachTile(x, m, k, n, o_begin, o_end, tile);
}

void A16RowsDispatch(int kernel, const float* x, int64_t m, const uint8_t* w, size_t row_bytes, int64_t n,
                     int64_t k, const float* bias, int64_t o_begin, int64_t o_end, float* y) {
  switch (static_cast<A16Kernel>(kernel)) {
    case A16Kernel::kW2G32:
      return GroupRows<GroupLayout<2, 32, false>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW2G64:
      return GroupRows<GroupLayout<2, 64, false>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW2G128:
      return GroupRows<GroupLayout<2, 128, false>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW2SG32:
      return GroupRows<GroupLayout<2, 32, true>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW2SG64:
      return GroupRows<GroupLayout<2, 64, true>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW4G32:
      return GroupRows<GroupLayout<4, 32, false>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW4G64:
      return GroupRows<GroupLayout<4, 64, false>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW8:
      return W8Rows(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kNone:
      return;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bitlens::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitlens::kernels {
namespace {

// Formats with a kernel, and the block geometry the kernel assumes (checked
// against the table so a changed layout falls back to the reference).
struct A16Format {
  const char* name;
  A16Kernel kernel;
  int block_weights, block_bytes, row_header_bytes;
};
constexpr A16Format kA16Formats[] = {
    {"w2g32", A16Kernel::kW2G32, 32, 12, 0},  {"w2g64", A16Kernel::kW2G64, 64, 20, 0},
    {"w2g128", A16Kernel::kW2G128, 128, 36, 0}, {"w2sg32", A16Kernel::kW2SG32, 32, 10, 0},
    {"w2sg64", A16Kernel::kW2SG64, 64, 18, 0}, {"w4g32", A16Kernel::kW4G32, 32, 20, 0},
    {"w4g64", A16Kernel::kW4G64, 64, 36, 0},  {"w8", A16Kernel::kW8, 1, 1, 4},
};

A16Kernel KernelFor(const quant::FormatInfo& f) {
  for (const A16Format& a : kA16Formats) {
    if (std::string_view(f.name) == a.name) {
      const bool same = f.block_weights == a.block_weights && f.block_bytes == a.block_bytes &&
                        f.row_header_bytes == a.row_header_bytes;
      return same ? a.kernel : A16Kernel::kNone;
    }
  }
  return A16Kernel::kNone;
}

}  // namespace

HWY_EXPORT(A16RowsDispatch);

bool QMatMulA16Supports(const quant::FormatInfo& f) { return KernelFor(f) != A16Kernel::kNone; }

void QMatMulA16Rows(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                    int64_t k, const float* bias, int64_t o_begin, int64_t o_end, float* y) {
  HWY_DYNAMIC_DISPATCH(A16RowsDispatch)(static_cast<int>(KernelFor(f)), x, m, w, quant::RowBytes(f, k), n, k,
                                        bias, o_begin, o_end, y);
}

}  // namespace bitlens::kernels
#endif  // HWY_ONCE
