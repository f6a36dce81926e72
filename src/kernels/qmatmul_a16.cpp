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
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "base/f16.h"
#include "kernels/qmatmul_a16.h"
#include "quant/block_codes.h"

#ifndef BITLENS_KERNELS_QMATMUL_A16_ONCE
#define BITLENS_KERNELS_QMATMUL_A16_ONCE
namespace bitlens::kernels {
// The code layouts with a kernel; the formats they serve are listed in
// kA16Formats below.
enum class A16Kernel : int {
  kNone, kW2G32, kW2G64, kW2G128, kW2SG32, kW2SG64, kW4G32, kW4G64, kW8, kW2G32DQ, kW2G64DQ, kW3G32, kW3G64, kT1
};
}  // namespace bitlens::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace bitlens::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// ---------------------------------------------------------------------------
// Codecs: how one format's blocks become f32 weights. Each has
//   kBlockWeights, kBlockBytes, kRowHeaderBytes   (block b of a row starts at
//                                                   row + header + b·bytes)
//   Decode(row, b0, b1, out)   full blocks [b0, b1) -> (b1−b0)·kBlockWeights f32
//   Tail(row, x, k)            Σ x_i·w_i over a partial last block, i < k, in order
//   RowScale(row)              the per-row factor applied last (w8), else 1
// Codecs hold no vectors (so the code also builds for sizeless SVE/RVV).

// 16-lane table decode on AVX-512: vpermps reads only the low four bits of
// each index, so code bytes widened to u32 index a 16-entry table without
// masking off the higher codes.
#undef BITLENS_A16_TABLE
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
#define BITLENS_A16_TABLE 1
using D16 = hn::FixedTag<float, 16>;
using U16 = hn::FixedTag<uint32_t, 16>;
HWY_INLINE hn::Vec<D16> Lookup16(hn::Vec<D16> table, hn::Vec<U16> idx) {
  return hn::Vec<D16>{_mm512_permutexvar_ps(idx.raw, table.raw)};
}
// 16 code bytes at p widened to u32 lanes.
HWY_INLINE hn::Vec<U16> LoadBytes16(const uint8_t* HWY_RESTRICT p) {
  return hn::PromoteTo(U16(), hn::LoadU(hn::FixedTag<uint8_t, 16>(), p));
}
// Tables over a nibble j = q_a + 4·q_b of two 2-bit codes: the code values
// j & 3 (lo) and j >> 2 (hi), and 0..15 for 4-bit codes.
HWY_INLINE hn::Vec<D16> CodesLo() {
  const U16 du;
  return hn::ConvertTo(D16(), hn::BitCast(hn::RebindToSigned<U16>(), hn::And(hn::Iota(du, 0), hn::Set(du, 3u))));
}
HWY_INLINE hn::Vec<D16> CodesHi() {
  const U16 du;
  return hn::ConvertTo(D16(), hn::BitCast(hn::RebindToSigned<U16>(), hn::ShiftRight<2>(hn::Iota(du, 0))));
}
HWY_INLINE hn::Vec<D16> Codes16() { return hn::Iota(D16(), 0.0f); }
#else
#define BITLENS_A16_TABLE 0
#endif

// 8-lane table decode of 2-bit codes (AVX2 and AVX-512): vpermps on 256 bits
// reads the low three index bits, so code bytes shifted by 2·p index a table
// holding the weight of code j & 3 in lane j.
#undef BITLENS_A16_TABLE8
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define BITLENS_A16_TABLE8 1
using D8 = hn::FixedTag<float, 8>;
using U8 = hn::FixedTag<uint32_t, 8>;
HWY_INLINE hn::Vec<D8> Lookup8(hn::Vec<D8> table, hn::Vec<U8> idx) {
  return hn::Vec<D8>{_mm256_permutevar8x32_ps(table.raw, idx.raw)};
}
#else
#define BITLENS_A16_TABLE8 0
#endif

template <class D>
HWY_INLINE hn::Vec<D> HalfToVec(D d, uint16_t bits) {
  const hn::Rebind<uint16_t, D> du16;
  const hn::Rebind<hwy::float16_t, D> df16;
  return hn::PromoteTo(d, hn::BitCast(df16, hn::Set(du16, bits)));
}

HWY_INLINE uint16_t LoadHalf(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

// A group block of quant/formats.h: [f16 scale][f16 min, unless stretched]
// [g·bits/8 code bytes]; weight i of the group is in byte i % kPlaneBytes at
// bit bits·(i / kPlaneBytes), so each "plane" of kPlaneBytes weights is one
// shift-and-mask over the code bytes. Stretched: w = scale·(q − 1.5), i.e.
// offset −1.5·scale (exact in f32 for an f16 scale).
template <int kBitsT, int kGroupT, bool kStretchedT>
struct GroupCodec {
  static constexpr int kBits = kBitsT;
  static constexpr int kBlockWeights = kGroupT;
  static constexpr bool kStretched = kStretchedT;
  static constexpr int kHeaderBytes = kStretched ? 2 : 4;
  static constexpr int kPlaneBytes = kGroupT * kBits / 8;
  static constexpr int kBlockBytes = kHeaderBytes + kPlaneBytes;
  static constexpr int kRowHeaderBytes = 0;
  static constexpr uint32_t kMask = (1u << kBits) - 1;
  // The table decode needs whole 16-byte runs of a plane.
  static constexpr bool kTable = BITLENS_A16_TABLE && kPlaneBytes % 16 == 0;
  // Otherwise 2-bit codes take the 8-lane table where there is one.
  static constexpr bool kTable8 = BITLENS_A16_TABLE8 && !kTable && kBits == 2 && kPlaneBytes % 8 == 0;

  static float RowScale(const uint8_t*) { return 1.0f; }

  // The block's grid, broadcast: value(q) = offset + scale·q.
  template <class D>
  static HWY_INLINE void Grid(D d, const uint8_t* HWY_RESTRICT blk, hn::Vec<D>& scale, hn::Vec<D>& offset) {
    scale = HalfToVec(d, LoadHalf(blk));
    offset = kStretched ? hn::Mul(scale, hn::Set(d, -1.5f)) : HalfToVec(d, LoadHalf(blk + 2));
  }

  // Codes of plane p (shift bits·p) from code bytes widened to u32, as f32.
  template <int kShift, class D>
  static HWY_INLINE hn::Vec<D> PlaneCodes(D d, hn::Vec<hn::RebindToUnsigned<D>> u) {
    const hn::RebindToUnsigned<D> du;
    auto c = hn::ShiftRight<kShift>(u);
    if constexpr (kShift + kBits < 8) c = hn::And(c, hn::Set(du, kMask));
    return hn::ConvertTo(d, hn::BitCast(hn::RebindToSigned<D>(), c));
  }

  static void Decode(const uint8_t* HWY_RESTRICT row, int64_t b0, int64_t b1, float* HWY_RESTRICT out) {
    constexpr int64_t P = kPlaneBytes;
#if BITLENS_A16_TABLE
    if constexpr (kTable) {
      const D16 d;
      const auto lo_codes = kBits == 2 ? CodesLo() : Codes16(), hi_codes = CodesHi();
      for (int64_t b = b0; b < b1; ++b, out += kBlockWeights) {
        const uint8_t* HWY_RESTRICT blk = row + b * kBlockBytes;
        hn::Vec<D16> scale, offset;
        Grid(d, blk, scale, offset);
        const auto t_lo = hn::MulAdd(lo_codes, scale, offset), t_hi = hn::MulAdd(hi_codes, scale, offset);
        for (int64_t j = 0; j < P; j += 16) {
          const auto u = LoadBytes16(blk + kHeaderBytes + j), u4 = hn::ShiftRight<4>(u);
          if constexpr (kBits == 2) {
            hn::StoreU(Lookup16(t_lo, u), d, out + j);
            hn::StoreU(Lookup16(t_hi, u), d, out + P + j);
            hn::StoreU(Lookup16(t_lo, u4), d, out + 2 * P + j);
            hn::StoreU(Lookup16(t_hi, u4), d, out + 3 * P + j);
          } else {
            hn::StoreU(Lookup16(t_lo, u), d, out + j);
            hn::StoreU(Lookup16(t_lo, u4), d, out + P + j);
          }
        }
      }
      return;
    }
#endif
    const hn::CappedTag<float, P> d;
    const hn::RebindToUnsigned<decltype(d)> du;
    const hn::Rebind<uint8_t, decltype(d)> d8;
    const int64_t N = static_cast<int64_t>(hn::Lanes(d));
    for (int64_t b = b0; b < b1; ++b, out += kBlockWeights) {
      const uint8_t* HWY_RESTRICT blk = row + b * kBlockBytes;
      hn::Vec<decltype(d)> scale, offset;
      Grid(d, blk, scale, offset);
      for (int64_t j = 0; j < P; j += N) {
        const auto u = hn::PromoteTo(du, hn::LoadU(d8, blk + kHeaderBytes + j));
        if constexpr (kBits == 2) {
          hn::StoreU(hn::MulAdd(PlaneCodes<0>(d, u), scale, offset), d, out + j);
          hn::StoreU(hn::MulAdd(PlaneCodes<2>(d, u), scale, offset), d, out + P + j);
          hn::StoreU(hn::MulAdd(PlaneCodes<4>(d, u), scale, offset), d, out + 2 * P + j);
          hn::StoreU(hn::MulAdd(PlaneCodes<6>(d, u), scale, offset), d, out + 3 * P + j);
        } else {
          hn::StoreU(hn::MulAdd(PlaneCodes<0>(d, u), scale, offset), d, out + j);
          hn::StoreU(hn::MulAdd(PlaneCodes<4>(d, u), scale, offset), d, out + P + j);
        }
      }
    }
  }

  static float Tail(const uint8_t* HWY_RESTRICT row, const float* HWY_RESTRICT x, int64_t k) {
    const int64_t nb = k / kBlockWeights, rem = k - nb * kBlockWeights;
    if (rem == 0) return 0.0f;
    const uint8_t* blk = row + nb * kBlockBytes;
    const uint8_t* q = blk + kHeaderBytes;
    const float scale = F16ToF32(LoadHalf(blk));
    const float offset = kStretched ? -1.5f * scale : F16ToF32(LoadHalf(blk + 2));
    const float* xb = x + nb * kBlockWeights;
    float sum = 0.0f;
    for (int64_t i = 0; i < rem; ++i) {
      const uint32_t code = (q[i % kPlaneBytes] >> (kBits * (i / kPlaneBytes))) & kMask;
      sum += xb[i] * (offset + scale * static_cast<float>(code));
    }
    return sum;
  }
};

// w8 rows: [f32 scale][k int8]. Decoded as the integer codes (exact in f32);
// the scale multiplies the finished dot. "Blocks" are runs of 16 codes.
struct W8Codec {
  static constexpr int kBlockWeights = 16;
  static constexpr int kBlockBytes = 16;
  static constexpr int kRowHeaderBytes = 4;

  static float RowScale(const uint8_t* row) {
    float scale;
    std::memcpy(&scale, row, 4);
    return scale;
  }
  static void Decode(const uint8_t* HWY_RESTRICT row, int64_t b0, int64_t b1, float* HWY_RESTRICT out) {
    const hn::CappedTag<float, 16> d;
    const hn::Rebind<int8_t, decltype(d)> d8;
    const hn::RebindToSigned<decltype(d)> di;
    const int8_t* HWY_RESTRICT q = reinterpret_cast<const int8_t*>(row + kRowHeaderBytes);
    const int64_t N = static_cast<int64_t>(hn::Lanes(d));
    for (int64_t i = b0 * 16; i < b1 * 16; i += N, out += N) {
      hn::StoreU(hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, q + i))), d, out);
    }
  }
  static float Tail(const uint8_t* HWY_RESTRICT row, const float* HWY_RESTRICT x, int64_t k) {
    const int8_t* q = reinterpret_cast<const int8_t*>(row + kRowHeaderBytes);
    float sum = 0.0f;
    for (int64_t i = k / 16 * 16; i < k; ++i) sum += x[i] * static_cast<float>(q[i]);
    return sum;
  }
};

// ---------------------------------------------------------------------------
// Decode (m = 1): one dot product per weight row, weights in registers.

// How far ahead decode prefetches the weight stream.
constexpr int64_t kPrefetchBytes = 1024;

// Lane sum of one output's four accumulators.
template <class D>
HWY_INLINE float SumOf4(D d, hn::Vec<D> r0, hn::Vec<D> r1, hn::Vec<D> r2, hn::Vec<D> r3) {
  return hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(r0, r1), hn::Add(r2, r3))));
}

// One block of a group format against x (xb: the block's first weight),
// weights decoded in registers, into four accumulators: 2-bit plane p feeds
// r_p; 4-bit planes 0, 1 of a block's even runs of code bytes feed r0, r1,
// of its odd runs r2, r3.
template <class C, class D>
HWY_INLINE void GroupBlockDot(D d, const uint8_t* HWY_RESTRICT blk, const float* HWY_RESTRICT xb,
                              hn::Vec<D>& r0, hn::Vec<D>& r1, hn::Vec<D>& r2, hn::Vec<D>& r3) {
  using V = hn::Vec<D>;
  constexpr int64_t P = C::kPlaneBytes;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const uint8_t* HWY_RESTRICT q = blk + C::kHeaderBytes;
  V scale, offset;
  C::Grid(d, blk, scale, offset);
#if BITLENS_A16_TABLE
  if constexpr (C::kTable) {
    const V t_lo = hn::MulAdd(C::kBits == 2 ? CodesLo() : Codes16(), scale, offset);
    const V t_hi = C::kBits == 2 ? hn::MulAdd(CodesHi(), scale, offset) : t_lo;
    for (int64_t j = 0; j < P; j += 16) {
      const auto u = LoadBytes16(q + j), u4 = hn::ShiftRight<4>(u);
      if constexpr (C::kBits == 2) {
        r0 = hn::MulAdd(hn::LoadU(d, xb + j), Lookup16(t_lo, u), r0);
        r1 = hn::MulAdd(hn::LoadU(d, xb + P + j), Lookup16(t_hi, u), r1);
        r2 = hn::MulAdd(hn::LoadU(d, xb + 2 * P + j), Lookup16(t_lo, u4), r2);
        r3 = hn::MulAdd(hn::LoadU(d, xb + 3 * P + j), Lookup16(t_hi, u4), r3);
      } else if ((j / 16) & 1) {
        r2 = hn::MulAdd(hn::LoadU(d, xb + j), Lookup16(t_lo, u), r2);
        r3 = hn::MulAdd(hn::LoadU(d, xb + P + j), Lookup16(t_lo, u4), r3);
      } else {
        r0 = hn::MulAdd(hn::LoadU(d, xb + j), Lookup16(t_lo, u), r0);
        r1 = hn::MulAdd(hn::LoadU(d, xb + P + j), Lookup16(t_lo, u4), r1);
      }
    }
    return;
  }
#endif
#if BITLENS_A16_TABLE8
  if constexpr (C::kTable8) {
    const hn::RebindToSigned<U8> di;
    const V table = hn::MulAdd(hn::ConvertTo(d, hn::BitCast(di, hn::And(hn::Iota(U8(), 0), hn::Set(U8(), 3u)))),
                               scale, offset);
    for (int64_t j = 0; j < P; j += 8) {
      const auto u = hn::PromoteTo(U8(), hn::LoadU(hn::FixedTag<uint8_t, 8>(), q + j));
      r0 = hn::MulAdd(hn::LoadU(d, xb + j), Lookup8(table, u), r0);
      r1 = hn::MulAdd(hn::LoadU(d, xb + P + j), Lookup8(table, hn::ShiftRight<2>(u)), r1);
      r2 = hn::MulAdd(hn::LoadU(d, xb + 2 * P + j), Lookup8(table, hn::ShiftRight<4>(u)), r2);
      r3 = hn::MulAdd(hn::LoadU(d, xb + 3 * P + j), Lookup8(table, hn::ShiftRight<6>(u)), r3);
    }
    return;
  }
#endif
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<uint8_t, D> d8;
  for (int64_t j = 0; j < P; j += N) {
    const auto u = hn::PromoteTo(du, hn::LoadU(d8, q + j));
    if constexpr (C::kBits == 2) {
      r0 = hn::MulAdd(hn::LoadU(d, xb + j), hn::MulAdd(C::template PlaneCodes<0>(d, u), scale, offset), r0);
      r1 = hn::MulAdd(hn::LoadU(d, xb + P + j), hn::MulAdd(C::template PlaneCodes<2>(d, u), scale, offset), r1);
      r2 = hn::MulAdd(hn::LoadU(d, xb + 2 * P + j), hn::MulAdd(C::template PlaneCodes<4>(d, u), scale, offset), r2);
      r3 = hn::MulAdd(hn::LoadU(d, xb + 3 * P + j), hn::MulAdd(C::template PlaneCodes<6>(d, u), scale, offset), r3);
    } else {
      const V w0 = hn::MulAdd(C::template PlaneCodes<0>(d, u), scale, offset);
      const V w1 = hn::MulAdd(C::template PlaneCodes<4>(d, u), scale, offset);
      if ((j / N) & 1) {
        r2 = hn::MulAdd(hn::LoadU(d, xb + j), w0, r2);
        r3 = hn::MulAdd(hn::LoadU(d, xb + P + j), w1, r3);
      } else {
        r0 = hn::MulAdd(hn::LoadU(d, xb + j), w0, r0);
        r1 = hn::MulAdd(hn::LoadU(d, xb + P + j), w1, r1);
      }
    }
  }
}

// Σ x·w over one row of a group format. Even blocks feed a0..a3, odd blocks
// a4..a7: eight independent FMA chains, so the loop is not bound by the FMA
// latency.
template <class C>
HWY_INLINE float GroupDot(const float* HWY_RESTRICT x, int64_t k, const uint8_t* HWY_RESTRICT row) {
  constexpr int64_t G = C::kBlockWeights;
#if BITLENS_A16_TABLE
  using D = std::conditional_t<C::kTable, D16, std::conditional_t<C::kTable8, D8, hn::CappedTag<float, C::kPlaneBytes>>>;
#elif BITLENS_A16_TABLE8
  using D = std::conditional_t<C::kTable8, D8, hn::CappedTag<float, C::kPlaneBytes>>;
#else
  using D = hn::CappedTag<float, C::kPlaneBytes>;
#endif
  const D d;
  using V = hn::Vec<D>;
  const int64_t nb = k / G;
  V a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const uint8_t* HWY_RESTRICT blk = row + b * C::kBlockBytes;
    hwy::Prefetch(blk + kPrefetchBytes);
    GroupBlockDot<C>(d, blk, x + b * G, a0, a1, a2, a3);
    GroupBlockDot<C>(d, blk + C::kBlockBytes, x + (b + 1) * G, a4, a5, a6, a7);
  }
  if (b < nb) GroupBlockDot<C>(d, row + b * C::kBlockBytes, x + b * G, a0, a1, a2, a3);
  const V sum = hn::Add(hn::Add(hn::Add(a0, a4), hn::Add(a1, a5)), hn::Add(hn::Add(a2, a6), hn::Add(a3, a7)));
  return hn::GetLane(hn::SumOfLanes(d, sum)) + C::Tail(row, x, k);
}

// Σ x·q over one w8 row (the caller applies the scale); chunk c of N codes
// feeds slot c % 4.
HWY_INLINE float W8Dot(const float* HWY_RESTRICT x, int64_t k, const uint8_t* HWY_RESTRICT row) {
  const hn::CappedTag<float, 16> d;
  using V = hn::Vec<decltype(d)>;
  const hn::RebindToSigned<decltype(d)> di;
  const hn::Rebind<int8_t, decltype(d)> d8;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int8_t* HWY_RESTRICT q = reinterpret_cast<const int8_t*>(row + W8Codec::kRowHeaderBytes);
  const int64_t k_vec = k / 16 * 16;
  V a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
  auto codes = [&](int64_t i) { return hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, q + i))); };
  int64_t i = 0;
  for (; i + 4 * N <= k_vec; i += 4 * N) {
    hwy::Prefetch(q + i + kPrefetchBytes);
    a0 = hn::MulAdd(hn::LoadU(d, x + i), codes(i), a0);
    a1 = hn::MulAdd(hn::LoadU(d, x + i + N), codes(i + N), a1);
    a2 = hn::MulAdd(hn::LoadU(d, x + i + 2 * N), codes(i + 2 * N), a2);
    a3 = hn::MulAdd(hn::LoadU(d, x + i + 3 * N), codes(i + 3 * N), a3);
  }
  if (i < k_vec) a0 = hn::MulAdd(hn::LoadU(d, x + i), codes(i), a0), i += N;
  if (i < k_vec) a1 = hn::MulAdd(hn::LoadU(d, x + i), codes(i), a1), i += N;
  if (i < k_vec) a2 = hn::MulAdd(hn::LoadU(d, x + i), codes(i), a2), i += N;
  return SumOf4(d, a0, a1, a2, a3) + W8Codec::Tail(row, x, k);
}

// Double-quantized 2-bit super-blocks (w2g32dq, w2g64dq): [f16 d, m0, dm]
// [one byte per group: scale code sc (bits 0-3), min code mc (bits 4-7)]
// [64 code bytes: one 2-bit plane over 256 weights, weight i in byte i % 64 at
// bit 2·(i / 64)]. Group grid: scale = d·sc, offset = m0 + dm·mc, both
// formed in scalar f32 once per group (as quant::DqGroupAt does).
template <int kGroupT>
struct DqCodec {
  static constexpr int kGroup = kGroupT;
  static constexpr int kBlockWeights = quant::kDqBlock;
  static constexpr int kGroups = kBlockWeights / kGroup;
  static constexpr int kCodesOffset = quant::kDqHeaderBytes + kGroups;
  static constexpr int kBlockBytes = kCodesOffset + 64;
  static constexpr int kRowHeaderBytes = 0;
  static constexpr bool kTable = BITLENS_A16_TABLE;

  static float RowScale(const uint8_t*) { return 1.0f; }

  // Scale and offset of every group of the block (scalar path).
  static HWY_INLINE void Grids(const uint8_t* HWY_RESTRICT blk, float* scale, float* offset) {
    const float d = F16ToF32(LoadHalf(blk)), m0 = F16ToF32(LoadHalf(blk + 2)), dm = F16ToF32(LoadHalf(blk + 4));
    for (int j = 0; j < kGroups; ++j) {
      const uint8_t sm = blk[quant::kDqHeaderBytes + j];
      scale[j] = d * static_cast<float>(sm & 15);
      offset[j] = m0 + dm * static_cast<float>(sm >> 4);
    }
  }

#if BITLENS_A16_TABLE
  // Group j's table for lookups by the code in the low (plane even) or high
  // (plane odd) two bits of a nibble: group j covers plane (j·g) / 64. All
  // group grids are formed at once in lanes (d·sc and dm·mc are exact in
  // f32, so this equals the scalar quant::DqGroupAt), then broadcast.
  static HWY_INLINE void Tables(const uint8_t* HWY_RESTRICT blk, hn::Vec<D16>* tables) {
    const D16 d;
    const U16 du;
    const hn::RebindToSigned<D16> di;
    // 16 bytes from the group codes on (the bytes past them are code bytes of
    // the same block, unused).
    const auto sm = LoadBytes16(blk + quant::kDqHeaderBytes);
    const auto sc = hn::ConvertTo(d, hn::BitCast(di, hn::And(sm, hn::Set(du, 15u))));
    const auto mc = hn::ConvertTo(d, hn::BitCast(di, hn::ShiftRight<4>(sm)));
    const auto scale = hn::Mul(HalfToVec(d, LoadHalf(blk)), sc);
    const auto offset = hn::Add(HalfToVec(d, LoadHalf(blk + 2)), hn::Mul(HalfToVec(d, LoadHalf(blk + 4)), mc));
    const auto lo = CodesLo(), hi = CodesHi();
    for (int j = 0; j < kGroups; ++j) {
      const bool odd_plane = ((j * kGroup) / 64) & 1;
      const auto idx = hn::Set(du, static_cast<uint32_t>(j));
      tables[j] = hn::MulAdd(odd_plane ? hi : lo, Lookup16(scale, idx), Lookup16(offset, idx));
    }
  }
#endif

  static void Decode(const uint8_t* HWY_RESTRICT row, int64_t b0, int64_t b1, float* HWY_RESTRICT out) {
    for (int64_t b = b0; b < b1; ++b, out += kBlockWeights) {
      const uint8_t* HWY_RESTRICT blk = row + b * kBlockBytes;
      const uint8_t* HWY_RESTRICT q = blk + kCodesOffset;
#if BITLENS_A16_TABLE
      const D16 d;
      hn::Vec<D16> t[kGroups];
      Tables(blk, t);
      for (int j = 0; j < 64; j += 16) {
        const auto u = LoadBytes16(q + j), u4 = hn::ShiftRight<4>(u);
        hn::StoreU(Lookup16(t[j / kGroup], u), d, out + j);
        hn::StoreU(Lookup16(t[(64 + j) / kGroup], u), d, out + 64 + j);
        hn::StoreU(Lookup16(t[(128 + j) / kGroup], u4), d, out + 128 + j);
        hn::StoreU(Lookup16(t[(192 + j) / kGroup], u4), d, out + 192 + j);
      }
#else
      float scale[kGroups], offset[kGroups];
      Grids(blk, scale, offset);
      const hn::CappedTag<float, 16> d;
      const hn::RebindToUnsigned<decltype(d)> du;
      const hn::RebindToSigned<decltype(d)> di;
      const hn::Rebind<uint8_t, decltype(d)> d8;
      const int64_t N = static_cast<int64_t>(hn::Lanes(d));
      for (int64_t j = 0; j < 64; j += N) {
        const auto u = hn::PromoteTo(du, hn::LoadU(d8, q + j));
        for (int p = 0; p < 4; ++p) {
          const int g = static_cast<int>((64 * p + j) / kGroup);
          const auto c = hn::ConvertTo(d, hn::BitCast(di, hn::And(hn::ShiftRightSame(u, 2 * p), hn::Set(du, 3u))));
          hn::StoreU(hn::MulAdd(c, hn::Set(d, scale[g]), hn::Set(d, offset[g])), d, out + 64 * p + j);
        }
      }
#endif
    }
  }

  static float Tail(const uint8_t* HWY_RESTRICT row, const float* HWY_RESTRICT x, int64_t k) {
    const int64_t nb = k / kBlockWeights, rem = k - nb * kBlockWeights;
    if (rem == 0) return 0.0f;
    const uint8_t* blk = row + nb * kBlockBytes;
    const float* xb = x + nb * kBlockWeights;
    float sum = 0.0f;
    for (int64_t i = 0; i < rem; ++i) {
      const quant::DqGroup g = quant::DqGroupAt(blk, static_cast<int>(i / kGroup));
      const int code = quant::PlaneCode(blk + kCodesOffset, kBlockWeights, 2, static_cast<int>(i));
      sum += xb[i] * (g.offset + g.scale * static_cast<float>(code));
    }
    return sum;
  }
};

#if BITLENS_A16_TABLE
// Σ x·w over one double-quantized row, weights in registers: each group's
// table built once per block, then per 16 code bytes four lookups and FMAs.
// Plane p feeds accumulator p of the block's set (even blocks a0..a3, odd
// blocks a4..a7).
template <class C>
HWY_INLINE void DqBlockDot(const uint8_t* HWY_RESTRICT blk, const float* HWY_RESTRICT xb, hn::Vec<D16>& r0,
                           hn::Vec<D16>& r1, hn::Vec<D16>& r2, hn::Vec<D16>& r3) {
  const D16 d;
  hn::Vec<D16> t[C::kGroups];
  C::Tables(blk, t);
  const uint8_t* HWY_RESTRICT q = blk + C::kCodesOffset;
  for (int j = 0; j < 64; j += 16) {
    const auto u = LoadBytes16(q + j), u4 = hn::ShiftRight<4>(u);
    r0 = hn::MulAdd(hn::LoadU(d, xb + j), Lookup16(t[j / C::kGroup], u), r0);
    r1 = hn::MulAdd(hn::LoadU(d, xb + 64 + j), Lookup16(t[(64 + j) / C::kGroup], u), r1);
    r2 = hn::MulAdd(hn::LoadU(d, xb + 128 + j), Lookup16(t[(128 + j) / C::kGroup], u4), r2);
    r3 = hn::MulAdd(hn::LoadU(d, xb + 192 + j), Lookup16(t[(192 + j) / C::kGroup], u4), r3);
  }
}

template <class C>
HWY_INLINE float DqDot(const float* HWY_RESTRICT x, int64_t k, const uint8_t* HWY_RESTRICT row) {
  const D16 d;
  using V = hn::Vec<D16>;
  constexpr int64_t G = C::kBlockWeights;
  const int64_t nb = k / G;
  V a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const uint8_t* HWY_RESTRICT blk = row + b * C::kBlockBytes;
    hwy::Prefetch(blk + kPrefetchBytes);
    hwy::Prefetch(blk + kPrefetchBytes + 64);
    DqBlockDot<C>(blk, x + b * G, a0, a1, a2, a3);
    DqBlockDot<C>(blk + C::kBlockBytes, x + (b + 1) * G, a4, a5, a6, a7);
  }
  if (b < nb) DqBlockDot<C>(row + b * C::kBlockBytes, x + b * G, a0, a1, a2, a3);
  const V sum = hn::Add(hn::Add(hn::Add(a0, a4), hn::Add(a1, a5)), hn::Add(hn::Add(a2, a6), hn::Add(a3, a7)));
  return hn::GetLane(hn::SumOfLanes(d, sum)) + C::Tail(row, x, k);
}
#endif

// 3-bit groups (w3g32, w3g64): [f16 scale][f16 min][g/4 bytes: 2-bit plane of
// bits 0-1][g/8 bytes: 1-bit plane of bit 2]. Weight i: low bits in byte
// i % (g/4) at bit 2·(i / (g/4)), high bit in byte i % (g/8) of the 1-bit
// plane at bit i / (g/8). A run of N ≤ g/8 weights lies in one place of each
// plane, so each run is two shift-and-masks by a uniform shift.
template <int kGroupT>
struct W3Codec {
  static constexpr int kGroup = kGroupT;
  static constexpr int kBlockWeights = kGroup;
  static constexpr int kLoBytes = kGroup / 4, kHiBytes = kGroup / 8;
  static constexpr int kBlockBytes = 4 + kLoBytes + kHiBytes;
  static constexpr int kRowHeaderBytes = 0;

  static float RowScale(const uint8_t*) { return 1.0f; }

  static void Decode(const uint8_t* HWY_RESTRICT row, int64_t b0, int64_t b1, float* HWY_RESTRICT out) {
    const hn::CappedTag<float, kHiBytes> d;
    const hn::RebindToUnsigned<decltype(d)> du;
    const hn::RebindToSigned<decltype(d)> di;
    const hn::Rebind<uint8_t, decltype(d)> d8;
    const int N = static_cast<int>(hn::Lanes(d));
    for (int64_t b = b0; b < b1; ++b, out += kBlockWeights) {
      const uint8_t* HWY_RESTRICT blk = row + b * kBlockBytes;
      const uint8_t* HWY_RESTRICT lo = blk + 4;
      const uint8_t* HWY_RESTRICT hi = lo + kLoBytes;
      const auto scale = HalfToVec(d, LoadHalf(blk)), offset = HalfToVec(d, LoadHalf(blk + 2));
      for (int i = 0; i < kGroup; i += N) {
        const auto l = hn::PromoteTo(du, hn::LoadU(d8, lo + i % kLoBytes));
        const auto h = hn::PromoteTo(du, hn::LoadU(d8, hi + i % kHiBytes));
        const auto code = hn::Or(hn::And(hn::ShiftRightSame(l, 2 * (i / kLoBytes)), hn::Set(du, 3u)),
                                 hn::ShiftLeft<2>(hn::And(hn::ShiftRightSame(h, i / kHiBytes), hn::Set(du, 1u))));
        hn::StoreU(hn::MulAdd(hn::ConvertTo(d, hn::BitCast(di, code)), scale, offset), d, out + i);
      }
    }
  }

  static float Tail(const uint8_t* HWY_RESTRICT row, const float* HWY_RESTRICT x, int64_t k) {
    const int64_t nb = k / kBlockWeights, rem = k - nb * kBlockWeights;
    if (rem == 0) return 0.0f;
    const uint8_t* blk = row + nb * kBlockBytes;
    const float scale = F16ToF32(LoadHalf(blk)), offset = F16ToF32(LoadHalf(blk + 2));
    const float* xb = x + nb * kBlockWeights;
    float sum = 0.0f;
    for (int64_t i = 0; i < rem; ++i) {
      const int code = quant::PlaneCode(blk + 4, kGroup, 3, static_cast<int>(i));
      sum += xb[i] * (offset + scale * static_cast<float>(code));
    }
    return sum;
  }
};

// Ternary t1: [f16 scale][48 bytes of 5 trits][4 bytes of 4 trits] per 256
// weights, w = scale·(t − 1). Weight i < 240 is digit i / 48 of byte i % 48,
// weight 240 + i digit i / 4 of byte 48 + i % 4; digit p of a byte decodes as
// ((byte·3^p mod 256)·3) >> 8 (formats.h), here in u32 lanes.
struct T1Codec {
  static constexpr int kBlockWeights = quant::kT1Block;
  static constexpr int kBlockBytes = 2 + quant::kT1Bytes5 + quant::kT1Bytes4;
  static constexpr int kRowHeaderBytes = 0;

  static float RowScale(const uint8_t*) { return 1.0f; }

  // N trits of digit p from the bytes at q, as scale·(t − 1).
  template <class D>
  static HWY_INLINE hn::Vec<D> Trits(D d, const uint8_t* HWY_RESTRICT q, uint32_t pow3, hn::Vec<D> scale,
                                     hn::Vec<D> neg_scale) {
    const hn::RebindToUnsigned<D> du;
    const auto bytes = hn::PromoteTo(du, hn::LoadU(hn::Rebind<uint8_t, D>(), q));
    const auto top = hn::And(hn::Mul(bytes, hn::Set(du, pow3)), hn::Set(du, 0xFFu));
    const auto t = hn::ShiftRight<8>(hn::Mul(top, hn::Set(du, 3u)));
    return hn::MulAdd(hn::ConvertTo(d, hn::BitCast(hn::RebindToSigned<D>(), t)), scale, neg_scale);
  }

  static void Decode(const uint8_t* HWY_RESTRICT row, int64_t b0, int64_t b1, float* HWY_RESTRICT out) {
    static constexpr uint32_t kPow3[5] = {1, 3, 9, 27, 81};
    const hn::CappedTag<float, 16> d;
    const hn::CappedTag<float, 4> d4;
    const int N = static_cast<int>(hn::Lanes(d)), N4 = static_cast<int>(hn::Lanes(d4));
    for (int64_t b = b0; b < b1; ++b, out += kBlockWeights) {
      const uint8_t* HWY_RESTRICT blk = row + b * kBlockBytes;
      const uint8_t* HWY_RESTRICT q = blk + 2;
      const auto scale = HalfToVec(d, LoadHalf(blk)), neg = hn::Neg(scale);
      for (int p = 0; p < 5; ++p) {
        for (int j = 0; j < quant::kT1Bytes5; j += N) {
          hn::StoreU(Trits(d, q + j, kPow3[p], scale, neg), d, out + quant::kT1Bytes5 * p + j);
        }
      }
      const auto scale4 = HalfToVec(d4, LoadHalf(blk)), neg4 = hn::Neg(scale4);
      for (int p = 0; p < 4; ++p) {
        for (int j = 0; j < quant::kT1Bytes4; j += N4) {
          hn::StoreU(Trits(d4, q + quant::kT1Bytes5 + j, kPow3[p], scale4, neg4), d4,
                     out + quant::kT1Bytes5 * 5 + quant::kT1Bytes4 * p + j);
        }
      }
    }
  }

  static float Tail(const uint8_t* HWY_RESTRICT row, const float* HWY_RESTRICT x, int64_t k) {
    const int64_t nb = k / kBlockWeights, rem = k - nb * kBlockWeights;
    if (rem == 0) return 0.0f;
    const uint8_t* blk = row + nb * kBlockBytes;
    const float scale = F16ToF32(LoadHalf(blk));
    const float* xb = x + nb * kBlockWeights;
    float sum = 0.0f;
    for (int64_t i = 0; i < rem; ++i) {
      sum += xb[i] * (scale * static_cast<float>(quant::TernaryCode(blk + 2, static_cast<int>(i)) - 1));
    }
    return sum;
  }
};

#if BITLENS_A16_TABLE
// Σ x·w over one t1 row, weights in registers. Digits of a byte come out one
// after another: with top_0 = byte, t_p = (3·top_p) >> 8 and top_{p+1} =
// (3·top_p) mod 256 (the formats.h rule, byte·3^p mod 256 built up). A trit
// indexes the table {−s, 0, s}. Run j (16 bytes) of digit p feeds
// accumulator (j + p) % 4; the last 16 weights (4 bytes × 4 digits) feed 3.
HWY_INLINE float T1Dot(const float* HWY_RESTRICT x, int64_t k, const uint8_t* HWY_RESTRICT row) {
  const D16 d;
  const U16 du;
  using V = hn::Vec<D16>;
  constexpr int64_t G = T1Codec::kBlockWeights, B5 = quant::kT1Bytes5;
  const int64_t nb = k / G;
  V acc[4] = {hn::Zero(d), hn::Zero(d), hn::Zero(d), hn::Zero(d)};
  const auto three = hn::Set(du, 3u), low8 = hn::Set(du, 0xFFu);
  const V iota = hn::Iota(d, 0.0f);
  // Last 16 weights: lane l is digit l / 4 of byte 48 + l % 4.
  alignas(64) static constexpr uint32_t kShift[16] = {0, 8, 16, 24, 0, 8, 16, 24, 0, 8, 16, 24, 0, 8, 16, 24};
  alignas(64) static constexpr uint32_t kPow[16] = {1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27};
  const auto shift4 = hn::Load(du, kShift), pow4 = hn::Load(du, kPow);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* HWY_RESTRICT blk = row + b * T1Codec::kBlockBytes;
    hwy::Prefetch(blk + kPrefetchBytes);
    const uint8_t* HWY_RESTRICT q = blk + 2;
    const float* HWY_RESTRICT xb = x + b * G;
    const V scale = HalfToVec(d, LoadHalf(blk));
    const V table = hn::MulAdd(iota, scale, hn::Neg(scale));
    for (int j = 0; j < 3; ++j) {
      auto top = LoadBytes16(q + 16 * j);
      for (int p = 0; p < 5; ++p) {
        const auto m3 = hn::Mul(top, three);
        top = hn::And(m3, low8);
        V& a = acc[(j + p) & 3];
        a = hn::MulAdd(hn::LoadU(d, xb + B5 * p + 16 * j), Lookup16(table, hn::ShiftRight<8>(m3)), a);
      }
    }
    uint32_t last4;
    std::memcpy(&last4, q + B5, 4);
    const auto bytes = hn::And(hn::Shr(hn::Set(du, last4), shift4), low8);
    const auto top = hn::And(hn::Mul(bytes, pow4), low8);
    acc[3] = hn::MulAdd(hn::LoadU(d, xb + 5 * B5), Lookup16(table, hn::ShiftRight<8>(hn::Mul(top, three))), acc[3]);
  }
  const V sum = hn::Add(hn::Add(acc[0], acc[1]), hn::Add(acc[2], acc[3]));
  return hn::GetLane(hn::SumOfLanes(d, sum)) + T1Codec::Tail(row, x, k);
}
#endif

#if BITLENS_A16_TABLE8
// Σ x·w over one 3-bit row (w3g32, w3g64), weights in registers, 8 lanes: the
// 3-bit code (low bits from the 2-bit plane, bit 2 from the 1-bit plane)
// indexes an 8-entry table with vpermps. Plane p of the 2-bit codes (run r of
// 8 bytes) feeds accumulator p; even blocks use acc[0..3], odd acc[4..7].
template <class C>
HWY_INLINE void W3BlockDot(const uint8_t* HWY_RESTRICT blk, const float* HWY_RESTRICT xb, hn::Vec<D8>* acc) {
  const D8 d;
  const U8 du;
  const hn::RebindToSigned<U8> di;
  const hn::FixedTag<uint8_t, 8> d8;
  constexpr int P = C::kLoBytes;
  const auto scale = HalfToVec(d, LoadHalf(blk)), offset = HalfToVec(d, LoadHalf(blk + 2));
  const auto table = hn::MulAdd(hn::ConvertTo(d, hn::BitCast(di, hn::Iota(du, 0))), scale, offset);
  const uint8_t* HWY_RESTRICT lo = blk + 4;
  const uint8_t* HWY_RESTRICT hi = lo + P;
  const auto three = hn::Set(du, 3u), one = hn::Set(du, 1u);
  // Lane l of run r of plane p is weight p·P + 8r + l; its high bit sits in
  // byte (p·P + 8r + l) % (g/8) of the 1-bit plane at bit (p·P + 8r + l) / (g/8).
  hn::Vec<U8> h, hbit0;  // per lane: that byte, and its bit for p = r = 0
  if constexpr (C::kGroup == 64) {
    h = hn::PromoteTo(du, hn::LoadU(d8, hi));  // byte l, bit 2p + r
    hbit0 = hn::Zero(du);
  } else {
    alignas(32) static constexpr uint32_t kByteShift[8] = {0, 8, 16, 24, 0, 8, 16, 24};
    alignas(32) static constexpr uint32_t kBit[8] = {0, 0, 0, 0, 1, 1, 1, 1};
    uint32_t word;
    std::memcpy(&word, hi, 4);
    h = hn::Shr(hn::Set(du, word), hn::Load(du, kByteShift));  // byte l % 4 in bits 0-7
    hbit0 = hn::Load(du, kBit);                                // bit 2p + l / 4
  }
  for (int r = 0; r < P / 8; ++r) {
    const auto u = hn::PromoteTo(du, hn::LoadU(d8, lo + 8 * r));
    for (int p = 0; p < 4; ++p) {
      const auto hb = hn::And(hn::Shr(h, hn::Add(hbit0, hn::Set(du, static_cast<uint32_t>(2 * p + r)))), one);
      const auto code = hn::Or(hn::And(hn::ShiftRightSame(u, 2 * p), three), hn::ShiftLeft<2>(hb));
      acc[p] = hn::MulAdd(hn::LoadU(d, xb + p * P + 8 * r), Lookup8(table, code), acc[p]);
    }
  }
}

template <class C>
HWY_INLINE float W3Dot(const float* HWY_RESTRICT x, int64_t k, const uint8_t* HWY_RESTRICT row) {
  const D8 d;
  using V = hn::Vec<D8>;
  constexpr int64_t G = C::kBlockWeights;
  const int64_t nb = k / G;
  V acc[8];
  for (V& a : acc) a = hn::Zero(d);
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const uint8_t* HWY_RESTRICT blk = row + b * C::kBlockBytes;
    hwy::Prefetch(blk + kPrefetchBytes);
    W3BlockDot<C>(blk, x + b * G, acc);
    W3BlockDot<C>(blk + C::kBlockBytes, x + (b + 1) * G, acc + 4);
  }
  if (b < nb) W3BlockDot<C>(row + b * C::kBlockBytes, x + b * G, acc);
  const V sum = hn::Add(hn::Add(hn::Add(acc[0], acc[4]), hn::Add(acc[1], acc[5])),
                        hn::Add(hn::Add(acc[2], acc[6]), hn::Add(acc[3], acc[7])));
  return hn::GetLane(hn::SumOfLanes(d, sum)) + C::Tail(row, x, k);
}
#endif

// Weights per decoded chunk on the stack (a multiple of every block size).
constexpr int64_t kChunk = 512;

// Σ x·w over one row of any codec: blocks decoded kChunk weights at a time
// into a stack buffer, then dotted with four accumulators (vector step s of
// the row feeds slot s % 4). For formats without an in-register kernel.
template <class C>
HWY_INLINE float StackedDot(const float* HWY_RESTRICT x, int64_t k, const uint8_t* HWY_RESTRICT row) {
  const hn::ScalableTag<float> d;
  using V = hn::Vec<decltype(d)>;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  HWY_ALIGN float wt[kChunk];
  const int64_t nb = k / C::kBlockWeights, k_full = nb * C::kBlockWeights;
  V a0 = hn::Zero(d), a1 = a0, a2 = a0, a3 = a0;
  int64_t step = 0;
  for (int64_t c0 = 0; c0 < k_full; c0 += kChunk) {
    const int64_t len = std::min(kChunk, k_full - c0);
    C::Decode(row, c0 / C::kBlockWeights, (c0 + len) / C::kBlockWeights, wt);
    for (int64_t i = 0; i < len; i += N, ++step) {
      const V xv = hn::LoadU(d, x + c0 + i), wv = hn::Load(d, wt + i);
      switch (step & 3) {
        case 0: a0 = hn::MulAdd(xv, wv, a0); break;
        case 1: a1 = hn::MulAdd(xv, wv, a1); break;
        case 2: a2 = hn::MulAdd(xv, wv, a2); break;
        default: a3 = hn::MulAdd(xv, wv, a3); break;
      }
    }
  }
  return SumOf4(d, a0, a1, a2, a3) + C::Tail(row, x, k);
}

// ---------------------------------------------------------------------------
// Prefill (m > 1): NR weight rows decoded kChunk weights at a time into a
// stack tile, then MR x rows × NR weight rows of FMAs per vector step, so
// each block is decoded once per x block (up to 64 rows) instead of once per
// x row. Partial sums live in a stack buffer between chunks; each output has
// one vector accumulator running over k in order, so the result does not
// depend on how rows are tiled or split over threads.

// 16 accumulators + 4 x vectors fit targets with 32 vector registers
// (AVX-512, NEON, SVE); 16-register targets (AVX2, SSE) use 4×2.
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3) || HWY_ARCH_ARM
constexpr int kGemmNR = 4;
#else
constexpr int kGemmNR = 2;
#endif
constexpr int kGemmMR = 4;
constexpr int64_t kGemmBlockRows = 64;
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);

// acc [MR][NR][N] (stride NR·N per x row) += x[MR rows, i0 .. i0+len) · wt[NR][len]^T.
template <int MR, int NR, class D>
HWY_INLINE void StackTile(D d, const float* HWY_RESTRICT x, int64_t k, const float* HWY_RESTRICT wt, int64_t len,
                          bool first, float* HWY_RESTRICT acc) {
  using V = hn::Vec<D>;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const float* x0 = x;
  const float* x1 = x + (MR > 1 ? k : 0);
  const float* x2 = x + (MR > 2 ? 2 * k : 0);
  const float* x3 = x + (MR > 3 ? 3 * k : 0);
  const float* w0 = wt;
  const float* w1 = wt + (NR > 1 ? kChunk : 0);
  const float* w2 = wt + (NR > 2 ? 2 * kChunk : 0);
  const float* w3 = wt + (NR > 3 ? 3 * kChunk : 0);
  auto init = [&](int r, int j) { return first ? hn::Zero(d) : hn::Load(d, acc + (r * NR + j) * N); };
  V a00 = init(0, 0), a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33;
  if constexpr (NR > 1) a01 = init(0, 1);
  if constexpr (NR > 2) a02 = init(0, 2);
  if constexpr (NR > 3) a03 = init(0, 3);
  if constexpr (MR > 1) {
    a10 = init(1, 0);
    if constexpr (NR > 1) a11 = init(1, 1);
    if constexpr (NR > 2) a12 = init(1, 2);
    if constexpr (NR > 3) a13 = init(1, 3);
  }
  if constexpr (MR > 2) {
    a20 = init(2, 0);
    if constexpr (NR > 1) a21 = init(2, 1);
    if constexpr (NR > 2) a22 = init(2, 2);
    if constexpr (NR > 3) a23 = init(2, 3);
  }
  if constexpr (MR > 3) {
    a30 = init(3, 0);
    if constexpr (NR > 1) a31 = init(3, 1);
    if constexpr (NR > 2) a32 = init(3, 2);
    if constexpr (NR > 3) a33 = init(3, 3);
  }
  for (int64_t i = 0; i < len; i += N) {
    const V v0 = hn::LoadU(d, x0 + i);
    V v1, v2, v3;
    if constexpr (MR > 1) v1 = hn::LoadU(d, x1 + i);
    if constexpr (MR > 2) v2 = hn::LoadU(d, x2 + i);
    if constexpr (MR > 3) v3 = hn::LoadU(d, x3 + i);
    {
      const V wv = hn::Load(d, w0 + i);
      a00 = hn::MulAdd(v0, wv, a00);
      if constexpr (MR > 1) a10 = hn::MulAdd(v1, wv, a10);
      if constexpr (MR > 2) a20 = hn::MulAdd(v2, wv, a20);
      if constexpr (MR > 3) a30 = hn::MulAdd(v3, wv, a30);
    }
    if constexpr (NR > 1) {
      const V wv = hn::Load(d, w1 + i);
      a01 = hn::MulAdd(v0, wv, a01);
      if constexpr (MR > 1) a11 = hn::MulAdd(v1, wv, a11);
      if constexpr (MR > 2) a21 = hn::MulAdd(v2, wv, a21);
      if constexpr (MR > 3) a31 = hn::MulAdd(v3, wv, a31);
    }
    if constexpr (NR > 2) {
      const V wv = hn::Load(d, w2 + i);
      a02 = hn::MulAdd(v0, wv, a02);
      if constexpr (MR > 1) a12 = hn::MulAdd(v1, wv, a12);
      if constexpr (MR > 2) a22 = hn::MulAdd(v2, wv, a22);
      if constexpr (MR > 3) a32 = hn::MulAdd(v3, wv, a32);
    }
    if constexpr (NR > 3) {
      const V wv = hn::Load(d, w3 + i);
      a03 = hn::MulAdd(v0, wv, a03);
      if constexpr (MR > 1) a13 = hn::MulAdd(v1, wv, a13);
      if constexpr (MR > 2) a23 = hn::MulAdd(v2, wv, a23);
      if constexpr (MR > 3) a33 = hn::MulAdd(v3, wv, a33);
    }
  }
  hn::Store(a00, d, acc);
  if constexpr (NR > 1) hn::Store(a01, d, acc + N);
  if constexpr (NR > 2) hn::Store(a02, d, acc + 2 * N);
  if constexpr (NR > 3) hn::Store(a03, d, acc + 3 * N);
  if constexpr (MR > 1) {
    float* r = acc + NR * N;
    hn::Store(a10, d, r);
    if constexpr (NR > 1) hn::Store(a11, d, r + N);
    if constexpr (NR > 2) hn::Store(a12, d, r + 2 * N);
    if constexpr (NR > 3) hn::Store(a13, d, r + 3 * N);
  }
  if constexpr (MR > 2) {
    float* r = acc + 2 * NR * N;
    hn::Store(a20, d, r);
    if constexpr (NR > 1) hn::Store(a21, d, r + N);
    if constexpr (NR > 2) hn::Store(a22, d, r + 2 * N);
    if constexpr (NR > 3) hn::Store(a23, d, r + 3 * N);
  }
  if constexpr (MR > 3) {
    float* r = acc + 3 * NR * N;
    hn::Store(a30, d, r);
    if constexpr (NR > 1) hn::Store(a31, d, r + N);
    if constexpr (NR > 2) hn::Store(a32, d, r + 2 * N);
    if constexpr (NR > 3) hn::Store(a33, d, r + 3 * N);
  }
}

// x rows [r0, r1) (at most kGemmBlockRows) against weight rows o .. o+NR.
template <int NR, class C>
HWY_INLINE void GemmBlock(const float* HWY_RESTRICT x, int64_t r0, int64_t r1, const uint8_t* HWY_RESTRICT w,
                          size_t row_bytes, int64_t n, int64_t k, const float* bias, int64_t o,
                          float* HWY_RESTRICT y) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  HWY_ALIGN float wt[NR * kChunk];
  HWY_ALIGN float acc[kGemmBlockRows * NR * kMaxLanes];
  const int64_t k_full = k / C::kBlockWeights * C::kBlockWeights;
  const uint8_t* rows = w + static_cast<size_t>(o) * row_bytes;
  for (int64_t c0 = 0; c0 < k_full; c0 += kChunk) {
    const int64_t len = std::min(kChunk, k_full - c0);
    const int64_t b0 = c0 / C::kBlockWeights, b1 = (c0 + len) / C::kBlockWeights;
    for (int j = 0; j < NR; ++j) C::Decode(rows + j * row_bytes, b0, b1, wt + j * kChunk);
    int64_t r = r0;
    for (; r + kGemmMR <= r1; r += kGemmMR) {
      StackTile<kGemmMR, NR>(d, x + r * k + c0, k, wt, len, c0 == 0, acc + (r - r0) * NR * N);
    }
    const float* xr = x + r * k + c0;
    float* ar = acc + (r - r0) * NR * N;
    if (r1 - r == 3) StackTile<3, NR>(d, xr, k, wt, len, c0 == 0, ar);
    if (r1 - r == 2) StackTile<2, NR>(d, xr, k, wt, len, c0 == 0, ar);
    if (r1 - r == 1) StackTile<1, NR>(d, xr, k, wt, len, c0 == 0, ar);
  }
  for (int64_t r = r0; r < r1; ++r) {
    for (int j = 0; j < NR; ++j) {
      const uint8_t* row = rows + j * row_bytes;
      float sum = 0.0f;
      if (k_full > 0) sum = hn::GetLane(hn::SumOfLanes(d, hn::Load(d, acc + ((r - r0) * NR + j) * N)));
      sum = C::RowScale(row) * (sum + C::Tail(row, x + r * k, k));
      if (bias) sum += bias[o + j];
      y[r * n + o + j] = sum;
    }
  }
}

template <class C>
void GemmRows(const float* x, int64_t m, const uint8_t* w, size_t row_bytes, int64_t n, int64_t k,
              const float* bias, int64_t o_begin, int64_t o_end, float* y) {
  for (int64_t r0 = 0; r0 < m; r0 += kGemmBlockRows) {
    const int64_t r1 = std::min(m, r0 + kGemmBlockRows);
    int64_t o = o_begin;
    for (; o + kGemmNR <= o_end; o += kGemmNR) GemmBlock<kGemmNR, C>(x, r0, r1, w, row_bytes, n, k, bias, o, y);
    for (; o < o_end; ++o) GemmBlock<1, C>(x, r0, r1, w, row_bytes, n, k, bias, o, y);
  }
}

// ---------------------------------------------------------------------------

// Decode: dot(x, k, row) per output row; prefill: GemmRows.
template <class C, class DotFn>
void Rows(const DotFn& dot, const float* x, int64_t m, const uint8_t* w, size_t row_bytes, int64_t n, int64_t k,
          const float* bias, int64_t o_begin, int64_t o_end, float* y) {
  if (m > 1) return GemmRows<C>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
  for (int64_t o = o_begin; o < o_end; ++o) {
    const uint8_t* row = w + static_cast<size_t>(o) * row_bytes;
    float sum = C::RowScale(row) * dot(x, k, row);
    if (bias) sum += bias[o];
    y[o] = sum;
  }
}

template <class C>
void GroupRows(const float* x, int64_t m, const uint8_t* w, size_t row_bytes, int64_t n, int64_t k,
               const float* bias, int64_t o_begin, int64_t o_end, float* y) {
  Rows<C>(GroupDot<C>, x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
}

template <class C>
void DqRows(const float* x, int64_t m, const uint8_t* w, size_t row_bytes, int64_t n, int64_t k,
            const float* bias, int64_t o_begin, int64_t o_end, float* y) {
#if BITLENS_A16_TABLE
  Rows<C>(DqDot<C>, x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
#else
  Rows<C>(StackedDot<C>, x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
#endif
}

template <class C>
void W3Rows(const float* x, int64_t m, const uint8_t* w, size_t row_bytes, int64_t n, int64_t k,
            const float* bias, int64_t o_begin, int64_t o_end, float* y) {
#if BITLENS_A16_TABLE8
  Rows<C>(W3Dot<C>, x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
#else
  Rows<C>(StackedDot<C>, x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
#endif
}

void A16RowsDispatch(int kernel, const float* x, int64_t m, const uint8_t* w, size_t row_bytes, int64_t n,
                     int64_t k, const float* bias, int64_t o_begin, int64_t o_end, float* y) {
  switch (static_cast<A16Kernel>(kernel)) {
    case A16Kernel::kW2G32:
      return GroupRows<GroupCodec<2, 32, false>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW2G64:
      return GroupRows<GroupCodec<2, 64, false>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW2G128:
      return GroupRows<GroupCodec<2, 128, false>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW2SG32:
      return GroupRows<GroupCodec<2, 32, true>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW2SG64:
      return GroupRows<GroupCodec<2, 64, true>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW4G32:
      return GroupRows<GroupCodec<4, 32, false>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW4G64:
      return GroupRows<GroupCodec<4, 64, false>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW8:
      return Rows<W8Codec>(W8Dot, x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW2G32DQ:
      return DqRows<DqCodec<32>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW2G64DQ:
      return DqRows<DqCodec<64>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW3G32:
      return W3Rows<W3Codec<32>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kW3G64:
      return W3Rows<W3Codec<64>>(x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
    case A16Kernel::kT1:
#if BITLENS_A16_TABLE
      return Rows<T1Codec>(T1Dot, x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
#else
      return Rows<T1Codec>(StackedDot<T1Codec>, x, m, w, row_bytes, n, k, bias, o_begin, o_end, y);
#endif
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
    {"w2g32dq", A16Kernel::kW2G32DQ, 256, 78, 0}, {"w2g64dq", A16Kernel::kW2G64DQ, 256, 74, 0},
    {"w3g32", A16Kernel::kW3G32, 32, 16, 0},  {"w3g64", A16Kernel::kW3G64, 64, 28, 0},
    {"t1", A16Kernel::kT1, 256, 54, 0},
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
