// kernels/qmatmul_a8: Highway kernel of the W2A8 path (see qmatmul_a8.h for
// the definition it reproduces bit for bit). The calling thread quantizes a
// block of x rows into a fixed stack buffer; workers split the output rows.
// Integer dots widen u8 codes and i8 activations to i16 and multiply-add
// pairs into i32 (pmaddwd / vmlal via ReorderWidenMulAccumulate), which is
// exact, so only the per-block f32 steps fix the order, done lane-free.
// Each f32 product and sum is rounded on its own, as in QMatMulA8Ref: no
// contraction into fused multiply-adds anywhere in this file.
#pragma GCC optimize("fp-contract=off")
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qmatmul_a8.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/highway.h"
// Per-target code shared with qmatmul_lut; also after foreach_target.h.
#include "kernels/qmatmul_a8-inl.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "base/thread_pool.h"
#include "kernels/qmatmul_a8.h"
#include "kernels/qmatmul_lut.h"
#include "kernels/qmatmul_vnni.h"
#include "quant/block_codes.h"
#include "quant/grid.h"

#ifndef BITLENS_QMATMUL_A8_SHARED
#define BITLENS_QMATMUL_A8_SHARED
namespace bitlens::kernels::a8 {

// Which row kernel reads a format's blocks. kGeneric decodes through
// quant::DecodeRow (any format with a grid); the others read blocks in place.
enum class RowKind {
  kGeneric, kW2Asym, kW2Stretched, kW4Asym, kW8,
  kW2DQ,  // double-quantized 2-bit super-blocks of 256 (groups of 32 or 64)
  kT1,    // ternary, base-3 bytes, groups of 256
  kW3,    // 3-bit: a 2-bit plane and a 1-bit plane per group of 32 or 64
};

// Exact f16 -> f32 (normals, subnormals, zeros; inf/NaN kept): the f16 bits
// shifted into an f32 with a 2^-112-biased exponent, then scaled by 2^112.
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  uint32_t bits;
  float f;
  if (em >= 0x7c00u) {
    bits = sign | 0x7f800000u | ((em & 0x3ffu) << 13);
    std::memcpy(&f, &bits, 4);
    return f;
  }
  bits = em << 13;
  std::memcpy(&f, &bits, 4);
  f *= 5.192296858534828e+33f;  // 2^112
  uint32_t out;
  std::memcpy(&out, &f, 4);
  out |= sign;
  std::memcpy(&f, &out, 4);
  return f;
}

// Quantized activation rows of one call, on the calling thread's stack.
// Row r of the block: xq + r·kq (kq = k padded to whole weight groups, zeros
// past k), d/bsum + r·nbq (nbq = kq / 32), sxg + r·ng.
struct Scratch {
  static constexpr int64_t kPad = 128;  // largest group the fast paths pad to
  alignas(64) int8_t xq[kA8MaxK + kPad];
  float d[(kA8MaxK + kPad) / kA8Block];
  int32_t bsum[(kA8MaxK + kPad) / kA8Block];
  float sxg[(kA8MaxK + kPad) / kA8Block];
};

}  // namespace bitlens::kernels::a8
#endif

HWY_BEFORE_NAMESPACE();
namespace bitlens::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using a8::HalfToFloat;
using a8::RowKind;

// Σ over the lanes of an i32 accumulator (exact).
template <class D32, class V32>
HWY_INLINE int32_t ReduceI32(D32 d32, V32 v) {
  return hn::GetLane(hn::SumOfLanes(d32, v));
}

// Integer dots of one group of G weights with B-bit plane-interleaved codes
// (weight i in byte i % Q at bit B·(i / Q), Q = G·B/8) against xq[G]:
// isum[b] for the G/32 activation blocks. Plane p of a run of L code bytes
// holds weights p·Q + c .. p·Q + c + L − 1, all inside block (p·Q + c) / 32.
template <int B, int G>
HWY_INLINE void GroupIsums(const uint8_t* HWY_RESTRICT q, const int8_t* HWY_RESTRICT xq,
                           int32_t* HWY_RESTRICT isum) {
  constexpr int Q = G * B / 8, P = 8 / B, kMask = (1 << B) - 1;
  const hn::CappedTag<int16_t, (Q < 32 ? Q : 32)> d16;
  const hn::Rebind<uint8_t, decltype(d16)> du8;
  const hn::Rebind<int8_t, decltype(d16)> di8;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const int L = static_cast<int>(hn::Lanes(d16));
  const auto mask = hn::Set(d16, static_cast<int16_t>(kMask));
  auto acc = hn::Zero(d32), acc1 = hn::Zero(d32);
  int cur = 0;
  for (int p = 0; p < P; ++p) {
    for (int c = 0; c < Q; c += L) {
      const int blk = (p * Q + c) / kA8Block;
      if (blk != cur) {
        isum[cur] = ReduceI32(d32, hn::Add(acc, acc1));
        acc = hn::Zero(d32);
        acc1 = hn::Zero(d32);
        cur = blk;
      }
      const auto bytes = hn::PromoteTo(d16, hn::LoadU(du8, q + c));
      const auto codes = hn::And(hn::ShiftRightSame(bytes, B * p), mask);
      const auto acts = hn::PromoteTo(d16, hn::LoadU(di8, xq + p * Q + c));
      acc = hn::ReorderWidenMulAccumulate(d32, codes, acts, acc, acc1);
    }
  }
  isum[cur] = ReduceI32(d32, hn::Add(acc, acc1));
}

// Σ_i xq_i · c_i over n (multiple of 32) values, per block of 32 -> isum[n/32];
// c_i unsigned 8-bit codes (generic path) or signed 8-bit values (w8).
template <typename TC>
HWY_INLINE void BlockIsums8(const TC* HWY_RESTRICT c, const int8_t* HWY_RESTRICT xq, int64_t n,
                            int32_t* HWY_RESTRICT isum) {
  const hn::CappedTag<int16_t, kA8Block> d16;
  const hn::Rebind<TC, decltype(d16)> dc;
  const hn::Rebind<int8_t, decltype(d16)> di8;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const int64_t L = static_cast<int64_t>(hn::Lanes(d16));
  for (int64_t b = 0; b < n / kA8Block; ++b) {
    auto acc = hn::Zero(d32), acc1 = hn::Zero(d32);
    for (int64_t j = b * kA8Block; j < (b + 1) * kA8Block; j += L) {
      acc = hn::ReorderWidenMulAccumulate(d32, hn::PromoteTo(d16, hn::LoadU(dc, c + j)),
                                          hn::PromoteTo(d16, hn::LoadU(di8, xq + j)), acc, acc1);
    }
    isum[b] = ReduceI32(d32, hn::Add(acc, acc1));
  }
}

// acc_G = Σ_b d_b · float(isum_b), b ascending (nb blocks), from 0.
HWY_INLINE float CombineBlocks(const int32_t* isum, const float* d, int64_t nb) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b) acc += d[b] * static_cast<float>(isum[b]);
  return acc;
}

// Activations of one x row as the row kernels read them.
struct ARow {
  const int8_t* xq;
  const float* d;
  const float* sxg;
  int64_t nb;  // valid activation blocks, ceil(k / 32)
};

// One output of a plane-interleaved group format: header H bytes (f16 scale,
// f16 min unless stretched), then G·B/8 code bytes, ng groups.
template <int B, int G, bool kStretched>
float RowDotPlanes(const uint8_t* HWY_RESTRICT row, int64_t ng, const ARow& a) {
  constexpr int H = kStretched ? 2 : 4, Q = G * B / 8, NB = G / kA8Block;
  int32_t isum[NB];
  float sum = 0.0f;
  for (int64_t g = 0; g < ng; ++g, row += H + Q) {
    uint16_t s16, m16 = 0;
    std::memcpy(&s16, row, 2);
    if constexpr (!kStretched) std::memcpy(&m16, row + 2, 2);
    const float scale = HalfToFloat(s16);
    const float offset = kStretched ? -1.5f * scale : HalfToFloat(m16);
    GroupIsums<B, G>(row + H, a.xq + g * G, isum);
    const int64_t nb = std::min<int64_t>(NB, a.nb - g * NB);
    const float acc = CombineBlocks(isum, a.d + g * NB, nb);
    sum += scale * acc + offset * a.sxg[g];
  }
  return sum;
}

#if HWY_TARGET != HWY_SCALAR
// Sums of the 128-bit blocks of u (i32 lanes) -> out[4].
template <class D>
HWY_INLINE void StoreBlockSums(D d, hn::Vec<D> u, int32_t* HWY_RESTRICT out) {
  if constexpr (hn::MaxLanes(D()) > 4) {
    const hn::Half<D> dh;
    StoreBlockSums(dh, hn::Add(hn::LowerHalf(dh, u), hn::UpperHalf(dh, u)), out);
  } else {
    hn::StoreU(u, d, out);
  }
}

// [Σ lanes of a0, a1, a2, a3] -> out[4], exact: a transpose-and-add tree
// inside each 128-bit block, then the blocks added.
template <class D32, class V>
HWY_INLINE void Reduce4(D32 d32, V a0, V a1, V a2, V a3, int32_t* HWY_RESTRICT out) {
  const hn::Repartition<int64_t, D32> d64;
  const V t01 = hn::Add(hn::InterleaveLower(d32, a0, a1), hn::InterleaveUpper(d32, a0, a1));
  const V t23 = hn::Add(hn::InterleaveLower(d32, a2, a3), hn::InterleaveUpper(d32, a2, a3));
  const auto l = hn::InterleaveLower(d64, hn::BitCast(d64, t01), hn::BitCast(d64, t23));
  const auto h = hn::InterleaveUpper(d64, hn::BitCast(d64, t01), hn::BitCast(d64, t23));
  StoreBlockSums(d32, hn::Add(hn::BitCast(d32, l), hn::BitCast(d32, h)), out);
}

// Four outputs of a plane-interleaved group format at once (rows r[0..3]):
// the activation vectors are loaded once for the four rows, the four integer
// sums of a block are reduced together, and the f32 steps run with one row
// per lane — each lane performs exactly the scalar sequence of RowDotPlanes.
template <int B, int G, bool kStretched>
void Tile4Planes(const uint8_t* const* HWY_RESTRICT r, int64_t ng, const ARow& a, float* HWY_RESTRICT out) {
  constexpr int H = kStretched ? 2 : 4, Q = G * B / 8, P = 8 / B, NB = G / kA8Block;
  constexpr int kMask = (1 << B) - 1;
  const hn::CappedTag<int16_t, (Q < 32 ? Q : 32)> d16;
  const hn::Rebind<uint8_t, decltype(d16)> du8;
  const hn::Rebind<int8_t, decltype(d16)> di8;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const hn::Full128<float> df4;
  const hn::RebindToSigned<decltype(df4)> di4;
  const hn::Rebind<hwy::float16_t, decltype(df4)> dh4;
  const int L = static_cast<int>(hn::Lanes(d16));
  const auto mask = hn::Set(d16, static_cast<int16_t>(kMask));
  auto sum = hn::Zero(df4);
  alignas(16) int32_t isum[4];
  alignas(16) uint16_t s16[4], m16[4];
  for (int64_t g = 0; g < ng; ++g) {
    const size_t off = static_cast<size_t>(g) * (H + Q);
    for (int j = 0; j < 4; ++j) {
      std::memcpy(&s16[j], r[j] + off, 2);
      if constexpr (!kStretched) std::memcpy(&m16[j], r[j] + off + 2, 2);
    }
    const auto scale = hn::PromoteTo(df4, hn::LoadU(dh4, reinterpret_cast<const hwy::float16_t*>(s16)));
    const auto offset = kStretched ? hn::Mul(hn::Set(df4, -1.5f), scale)
                                   : hn::PromoteTo(df4, hn::LoadU(dh4, reinterpret_cast<const hwy::float16_t*>(m16)));
    const uint8_t* q0 = r[0] + off + H;
    const uint8_t* q1 = r[1] + off + H;
    const uint8_t* q2 = r[2] + off + H;
    const uint8_t* q3 = r[3] + off + H;
    const int8_t* xg = a.xq + g * G;
    const float* dg = a.d + g * NB;
    const int64_t nb = std::min<int64_t>(NB, a.nb - g * NB);
    auto acc = hn::Zero(df4);
    auto c0 = hn::Zero(d32), c1 = c0, c2 = c0, c3 = c0;
    auto e0 = c0, e1 = c0, e2 = c0, e3 = c0;  // second sums (used on some targets only)
    int cur = 0;
    auto flush = [&](int blk) {
      if (blk < nb) {
        Reduce4(d32, hn::Add(c0, e0), hn::Add(c1, e1), hn::Add(c2, e2), hn::Add(c3, e3), isum);
        acc = hn::Add(acc, hn::Mul(hn::Set(df4, dg[blk]), hn::ConvertTo(df4, hn::LoadU(di4, isum))));
      }
      c0 = c1 = c2 = c3 = e0 = e1 = e2 = e3 = hn::Zero(d32);
    };
    for (int p = 0; p < P; ++p) {
      for (int c = 0; c < Q; c += L) {
        const int blk = (p * Q + c) / kA8Block;
        if (blk != cur) {
          flush(cur);
          cur = blk;
        }
        const auto acts = hn::PromoteTo(d16, hn::LoadU(di8, xg + p * Q + c));
        const auto k0 = hn::And(hn::ShiftRightSame(hn::PromoteTo(d16, hn::LoadU(du8, q0 + c)), B * p), mask);
        const auto k1 = hn::And(hn::ShiftRightSame(hn::PromoteTo(d16, hn::LoadU(du8, q1 + c)), B * p), mask);
        const auto k2 = hn::And(hn::ShiftRightSame(hn::PromoteTo(d16, hn::LoadU(du8, q2 + c)), B * p), mask);
        const auto k3 = hn::And(hn::ShiftRightSame(hn::PromoteTo(d16, hn::LoadU(du8, q3 + c)), B * p), mask);
        c0 = hn::ReorderWidenMulAccumulate(d32, k0, acts, c0, e0);
        c1 = hn::ReorderWidenMulAccumulate(d32, k1, acts, c1, e1);
        c2 = hn::ReorderWidenMulAccumulate(d32, k2, acts, c2, e2);
        c3 = hn::ReorderWidenMulAccumulate(d32, k3, acts, c3, e3);
      }
    }
    flush(cur);
    sum = hn::Add(sum, hn::Add(hn::Mul(scale, acc), hn::Mul(offset, hn::Set(df4, a.sxg[g]))));
  }
  hn::StoreU(sum, df4, out);
}
#endif

// w8 row: [f32 scale][k int8 q]; codes are q + 127, so isum_b = Σ xq·q + 127·bsum_b.
float RowDotW8(const uint8_t* HWY_RESTRICT row, int64_t k, const ARow& a, const int32_t* bsum) {
  float scale;
  std::memcpy(&scale, row, 4);
  const int8_t* q = reinterpret_cast<const int8_t*>(row + 4);
  constexpr int64_t kChunk = 1024;  // blocks of isums on the stack at a time
  int32_t isum[kChunk / kA8Block];
  float acc = 0.0f;
  const int64_t k_full = k / kA8Block * kA8Block;
  for (int64_t i0 = 0; i0 < a.nb * kA8Block; i0 += kChunk) {
    const int64_t n = std::min(kChunk, a.nb * kA8Block - i0);
    const int64_t b0 = i0 / kA8Block;
    if (i0 + n <= k_full) {
      BlockIsums8(q + i0, a.xq + i0, n, isum);
    } else {  // the ragged last block: copy the valid weights, zeros after
      BlockIsums8(q + i0, a.xq + i0, k_full - i0, isum);
      alignas(64) int8_t tail[kA8Block] = {};
      std::memcpy(tail, q + k_full, static_cast<size_t>(k - k_full));
      BlockIsums8(tail, a.xq + k_full, kA8Block, isum + (k_full - i0) / kA8Block);
    }
    for (int64_t j = 0; j < n / kA8Block; ++j) {
      const int32_t s = isum[j] + 127 * bsum[b0 + j];
      acc += a.d[b0 + j] * static_cast<float>(s);
    }
  }
  return scale * acc + (-127.0f * scale) * a.sxg[0];
}

// Σ xq_i · ((bytes[i] >> shift) & mask) over 32 weights (exact).
HWY_INLINE int32_t IsumShifted32(const uint8_t* HWY_RESTRICT bytes, int shift, int mask,
                                 const int8_t* HWY_RESTRICT xq) {
  const hn::CappedTag<int16_t, kA8Block> d16;
  const hn::Rebind<uint8_t, decltype(d16)> du8;
  const hn::Rebind<int8_t, decltype(d16)> di8;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const int L = static_cast<int>(hn::Lanes(d16));
  const auto vmask = hn::Set(d16, static_cast<int16_t>(mask));
  auto acc = hn::Zero(d32), acc1 = hn::Zero(d32);
  for (int j = 0; j < kA8Block; j += L) {
    const auto codes = hn::And(hn::ShiftRightSame(hn::PromoteTo(d16, hn::LoadU(du8, bytes + j)), shift), vmask);
    acc = hn::ReorderWidenMulAccumulate(d32, codes, hn::PromoteTo(d16, hn::LoadU(di8, xq + j)), acc, acc1);
  }
  return ReduceI32(d32, hn::Add(acc, acc1));
}

// Double-quantized super-blocks [f16 d][f16 m0][f16 dm][256/G scale|min
// codes][64 bytes: one 2-bit plane over 256 weights]. Activation block lb
// (0..7) of a super-block is plane bytes 32·(lb % 2) .. +31 at bit 2·(lb / 2);
// a group's grid is quant::DqGroupAt's f32 operations, repeated here.
template <int G>
float RowDotDQ(const uint8_t* HWY_RESTRICT row, int64_t ng, int block_bytes, const ARow& a) {
  constexpr int kGroupsPerSb = quant::kDqBlock / G, kBlocksPerGroup = G / kA8Block;
  constexpr int kPlane = quant::kDqHeaderBytes + kGroupsPerSb;
  float sum = 0.0f;
  for (int64_t g0 = 0; g0 < ng; g0 += kGroupsPerSb, row += block_bytes) {
    uint16_t h[3];
    std::memcpy(h, row, 6);
    const float dsc = HalfToFloat(h[0]), m0 = HalfToFloat(h[1]), dm = HalfToFloat(h[2]);
    for (int j = 0; j < kGroupsPerSb && g0 + j < ng; ++j) {
      const uint8_t sm = row[quant::kDqHeaderBytes + j];
      const float scale = dsc * static_cast<float>(sm & 15);
      const float offset = m0 + dm * static_cast<float>(sm >> 4);
      float acc = 0.0f;
      for (int bb = 0; bb < kBlocksPerGroup; ++bb) {
        const int lb = j * kBlocksPerGroup + bb;
        const int64_t b = (g0 / kGroupsPerSb) * 8 + lb;
        if (b >= a.nb) break;
        const int32_t isum = IsumShifted32(row + kPlane + 32 * (lb % 2), 2 * (lb / 2), 3, a.xq + b * kA8Block);
        acc += a.d[b] * static_cast<float>(isum);
      }
      sum += scale * acc + offset * a.sxg[g0 + j];
    }
  }
  return sum;
}

#if HWY_TARGET != HWY_SCALAR
// Four outputs of a double-quantized format at once, as Tile4Planes: shared
// activation vectors, joint block reductions, f32 steps one row per lane
// (each lane repeats RowDotDQ's scalar sequence, DqGroupAt's included).
template <int G>
void Tile4DQ(const uint8_t* const* HWY_RESTRICT r, int64_t ng, int block_bytes, const ARow& a,
             float* HWY_RESTRICT out) {
  constexpr int kGroupsPerSb = quant::kDqBlock / G, kBlocksPerGroup = G / kA8Block;
  constexpr int kPlane = quant::kDqHeaderBytes + kGroupsPerSb;
  const hn::CappedTag<int16_t, kA8Block> d16;
  const hn::Rebind<uint8_t, decltype(d16)> du8;
  const hn::Rebind<int8_t, decltype(d16)> di8;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const hn::Full128<float> df4;
  const hn::RebindToSigned<decltype(df4)> di4;
  const hn::Rebind<hwy::float16_t, decltype(df4)> dh4;
  const int L = static_cast<int>(hn::Lanes(d16));
  const auto mask = hn::Set(d16, 3);
  auto sum = hn::Zero(df4);
  alignas(16) int32_t isum[4], sc[4], mc[4];
  alignas(16) uint16_t h[3][4];
  for (int64_t g0 = 0, sb = 0; g0 < ng; g0 += kGroupsPerSb, ++sb) {
    const size_t off = static_cast<size_t>(sb) * block_bytes;
    for (int j = 0; j < 4; ++j) {
      for (int f = 0; f < 3; ++f) std::memcpy(&h[f][j], r[j] + off + 2 * f, 2);
    }
    const auto dsc = hn::PromoteTo(df4, hn::LoadU(dh4, reinterpret_cast<const hwy::float16_t*>(h[0])));
    const auto m0 = hn::PromoteTo(df4, hn::LoadU(dh4, reinterpret_cast<const hwy::float16_t*>(h[1])));
    const auto dm = hn::PromoteTo(df4, hn::LoadU(dh4, reinterpret_cast<const hwy::float16_t*>(h[2])));
    const uint8_t* p0 = r[0] + off + kPlane;
    const uint8_t* p1 = r[1] + off + kPlane;
    const uint8_t* p2 = r[2] + off + kPlane;
    const uint8_t* p3 = r[3] + off + kPlane;
    for (int j = 0; j < kGroupsPerSb && g0 + j < ng; ++j) {
      for (int q = 0; q < 4; ++q) {
        const uint8_t smq = r[q][off + quant::kDqHeaderBytes + j];
        sc[q] = smq & 15;
        mc[q] = smq >> 4;
      }
      const auto scale = hn::Mul(dsc, hn::ConvertTo(df4, hn::Load(di4, sc)));
      const auto offset = hn::Add(m0, hn::Mul(dm, hn::ConvertTo(df4, hn::Load(di4, mc))));
      auto acc = hn::Zero(df4);
      for (int bb = 0; bb < kBlocksPerGroup; ++bb) {
        const int lb = j * kBlocksPerGroup + bb;
        const int64_t b = sb * 8 + lb;
        if (b >= a.nb) break;
        const int shift = 2 * (lb / 2), at = 32 * (lb % 2);
        auto c0 = hn::Zero(d32), c1 = c0, c2 = c0, c3 = c0, e0 = c0, e1 = c0, e2 = c0, e3 = c0;
        for (int c = 0; c < kA8Block; c += L) {
          const auto acts = hn::PromoteTo(d16, hn::LoadU(di8, a.xq + b * kA8Block + c));
          const auto k0 = hn::And(hn::ShiftRightSame(hn::PromoteTo(d16, hn::LoadU(du8, p0 + at + c)), shift), mask);
          const auto k1 = hn::And(hn::ShiftRightSame(hn::PromoteTo(d16, hn::LoadU(du8, p1 + at + c)), shift), mask);
          const auto k2 = hn::And(hn::ShiftRightSame(hn::PromoteTo(d16, hn::LoadU(du8, p2 + at + c)), shift), mask);
          const auto k3 = hn::And(hn::ShiftRightSame(hn::PromoteTo(d16, hn::LoadU(du8, p3 + at + c)), shift), mask);
          c0 = hn::ReorderWidenMulAccumulate(d32, k0, acts, c0, e0);
          c1 = hn::ReorderWidenMulAccumulate(d32, k1, acts, c1, e1);
          c2 = hn::ReorderWidenMulAccumulate(d32, k2, acts, c2, e2);
          c3 = hn::ReorderWidenMulAccumulate(d32, k3, acts, c3, e3);
        }
        Reduce4(d32, hn::Add(c0, e0), hn::Add(c1, e1), hn::Add(c2, e2), hn::Add(c3, e3), isum);
        acc = hn::Add(acc, hn::Mul(hn::Set(df4, a.d[b]), hn::ConvertTo(df4, hn::Load(di4, isum))));
      }
      sum = hn::Add(sum, hn::Add(hn::Mul(scale, acc), hn::Mul(offset, hn::Set(df4, a.sxg[g0 + j]))));
    }
  }
  hn::StoreU(sum, df4, out);
}
#endif

template <int G>
void RunDQ(int64_t m_block, const ARow* arows, const uint8_t* w, size_t row_bytes, int64_t n, int64_t ng,
           int block_bytes, const float* bias, float* y) {
  auto rows = [&](size_t begin, size_t end, size_t /*worker*/) {
    int64_t o = static_cast<int64_t>(begin);
#if HWY_TARGET != HWY_SCALAR
    for (; o + 4 <= static_cast<int64_t>(end); o += 4) {
      const uint8_t* r[4] = {w + o * row_bytes, w + (o + 1) * row_bytes, w + (o + 2) * row_bytes,
                             w + (o + 3) * row_bytes};
      for (int64_t i = 0; i < m_block; ++i) {
        alignas(16) float s[4];
        Tile4DQ<G>(r, ng, block_bytes, arows[i], s);
        for (int j = 0; j < 4; ++j) y[i * n + o + j] = bias ? s[j] + bias[o + j] : s[j];
      }
    }
#endif
    for (; o < static_cast<int64_t>(end); ++o) {
      for (int64_t i = 0; i < m_block; ++i) {
        const float s = RowDotDQ<G>(w + o * row_bytes, ng, block_bytes, arows[i]);
        y[i * n + o] = bias ? s + bias[o] : s;
      }
    }
  };
  ParallelFor(static_cast<size_t>(n), 16, rows);
}

// t1 blocks [f16 scale][48 bytes of 5 trits][4 bytes of 4 trits], grid
// offset −scale: the 256 trits decoded to bytes with 16-bit lanes (digit p
// of a byte is ((byte·3^p) mod 256)·3 >> 8), then the block dots.
float RowDotT1(const uint8_t* HWY_RESTRICT row, int64_t ng, const ARow& a) {
  const hn::CappedTag<int16_t, 16> du16;  // values stay below 2^15
  const hn::Rebind<uint8_t, decltype(du16)> du8;
  const int L = static_cast<int>(hn::Lanes(du16));
  static constexpr int16_t kPow3[5] = {1, 3, 9, 27, 81};
  alignas(64) uint8_t codes[quant::kT1Block];
  int32_t isum[quant::kT1Block / kA8Block];
  float sum = 0.0f;
  for (int64_t g = 0; g < ng; ++g, row += 2 + quant::kT1Bytes5 + quant::kT1Bytes4) {
    uint16_t s16;
    std::memcpy(&s16, row, 2);
    const float scale = HalfToFloat(s16);
    const float offset = -scale;
    const uint8_t* q5 = row + 2;
    for (int c = 0; c < quant::kT1Bytes5; c += L) {
      const auto v = hn::PromoteTo(du16, hn::LoadU(du8, q5 + c));
      for (int p = 0; p < 5; ++p) {
        const auto top = hn::And(hn::Mul(v, hn::Set(du16, kPow3[p])), hn::Set(du16, 0xFF));
        const auto digit = hn::ShiftRight<8>(hn::Mul(top, hn::Set(du16, 3)));
        hn::StoreU(hn::DemoteTo(du8, digit), du8, codes + quant::kT1Bytes5 * p + c);
      }
    }
    for (int i = 0; i < quant::kT1Bytes4 * 4; ++i) {
      codes[quant::kT1Bytes5 * 5 + i] = static_cast<uint8_t>(quant::TernaryCode(q5, quant::kT1Bytes5 * 5 + i));
    }
    const int64_t nb = std::min<int64_t>(quant::kT1Block / kA8Block, a.nb - g * (quant::kT1Block / kA8Block));
    BlockIsums8(codes, a.xq + g * quant::kT1Block, nb * kA8Block, isum);
    const float acc = CombineBlocks(isum, a.d + g * (quant::kT1Block / kA8Block), nb);
    sum += scale * acc + offset * a.sxg[g];
  }
  return sum;
}

// 3-bit groups [f16 scale][f16 min][G/4 bytes: bits 0-1][G/8 bytes: bit 2].
template <int G>
float RowDotW3(const uint8_t* HWY_RESTRICT row, int64_t ng, const ARow& a) {
  constexpr int kLo = G / 4, kHi = G / 8, kBlocks = G / kA8Block;
  alignas(64) uint8_t codes[G];
  int32_t isum[kBlocks];
  float sum = 0.0f;
  for (int64_t g = 0; g < ng; ++g, row += 4 + kLo + kHi) {
    uint16_t s16, m16;
    std::memcpy(&s16, row, 2);
    std::memcpy(&m16, row + 2, 2);
    const float scale = HalfToFloat(s16), offset = HalfToFloat(m16);
    const uint8_t* lo = row + 4;
    const uint8_t* hi = lo + kLo;
    // Plane by plane, so each loop is a run of bytes at one shift (vectorizable).
    for (int p = 0; p < 4; ++p) {
      for (int j = 0; j < kLo; ++j) codes[p * kLo + j] = static_cast<uint8_t>((lo[j] >> (2 * p)) & 3);
    }
    for (int p = 0; p < 8; ++p) {
      for (int j = 0; j < kHi; ++j) codes[p * kHi + j] |= static_cast<uint8_t>(((hi[j] >> p) & 1) << 2);
    }
    const int64_t nb = std::min<int64_t>(kBlocks, a.nb - g * kBlocks);
    BlockIsums8(codes, a.xq + g * G, nb * kA8Block, isum);
    const float acc = CombineBlocks(isum, a.d + g * kBlocks, nb);
    sum += scale * acc + offset * a.sxg[g];
  }
  return sum;
}

// Any format with a grid: DecodeRow into stack buffers, then the same sums.
float RowDotGeneric(const quant::FormatInfo& f, const uint8_t* row, int64_t k, int64_t ng,
                    const ARow& a) {
  alignas(64) uint8_t codes[kA8MaxK + a8::Scratch::kPad];
  quant::GroupGrid grids[kA8MaxK / kA8Block];
  int32_t isum[kA8MaxK / kA8Block + 1];
  quant::DecodeRow(f, row, k, grids, codes);
  std::memset(codes + k, 0, static_cast<size_t>(a.nb * kA8Block - k));
  BlockIsums8(codes, a.xq, a.nb * kA8Block, isum);
  const int64_t g = f.group_size == 0 ? k : f.group_size;
  const int64_t bpg = (g + kA8Block - 1) / kA8Block;
  float sum = 0.0f;
  for (int64_t G = 0; G < ng; ++G) {
    const int64_t b0 = G * bpg, nb = std::min(bpg, a.nb - b0);
    const float acc = CombineBlocks(isum + b0, a.d + b0, nb);
    sum += grids[G].scale * acc + grids[G].offset * a.sxg[G];
  }
  return sum;
}

// Plane formats: four output rows at a time, the rest one by one.
template <int B, int G, bool kStretched>
void RunPlanes(int64_t m_block, const ARow* arows, const uint8_t* w, size_t row_bytes, int64_t n, int64_t ng,
               const float* bias, float* y) {
  auto rows = [&](size_t begin, size_t end, size_t /*worker*/) {
    int64_t o = static_cast<int64_t>(begin);
#if HWY_TARGET != HWY_SCALAR
    for (; o + 4 <= static_cast<int64_t>(end); o += 4) {
      const uint8_t* r[4] = {w + o * row_bytes, w + (o + 1) * row_bytes, w + (o + 2) * row_bytes,
                             w + (o + 3) * row_bytes};
      for (int64_t i = 0; i < m_block; ++i) {
        alignas(16) float s[4];
        Tile4Planes<B, G, kStretched>(r, ng, arows[i], s);
        for (int j = 0; j < 4; ++j) y[i * n + o + j] = bias ? s[j] + bias[o + j] : s[j];
      }
    }
#endif
    for (; o < static_cast<int64_t>(end); ++o) {
      for (int64_t i = 0; i < m_block; ++i) {
        const float s = RowDotPlanes<B, G, kStretched>(w + o * row_bytes, ng, arows[i]);
        y[i * n + o] = bias ? s + bias[o] : s;
      }
    }
  };
  ParallelFor(static_cast<size_t>(n), 16, rows);
}

template <class RowDot>
void RunRows(int64_t m_block, const ARow* arows, const uint8_t* w, size_t row_bytes, int64_t n,
             const float* bias, float* y, const RowDot& dot) {
  auto rows = [&](size_t begin, size_t end, size_t /*worker*/) {
    for (size_t o = begin; o < end; ++o) {
      const uint8_t* row = w + o * row_bytes;
      for (int64_t r = 0; r < m_block; ++r) {
        const float s = dot(row, arows[r]);
        y[r * n + static_cast<int64_t>(o)] = bias ? s + bias[o] : s;
      }
    }
  };
  ParallelFor(static_cast<size_t>(n), 16, rows);
}

void QMatMulA8Impl(const float* x, int64_t m, const quant::FormatInfo& f, int kind, const uint8_t* w,
                   int64_t n, int64_t k, const float* bias, float* y) {
  a8::Scratch s;
  const int64_t g = f.group_size == 0 ? k : f.group_size;
  const int64_t ng = quant::NumGroups(f, k);
  // Rows are padded to whole groups for the in-place group kernels (g <= 128)
  // and to whole blocks otherwise.
  const RowKind rk = static_cast<RowKind>(kind);
  const bool group_pad = rk == RowKind::kW2Asym || rk == RowKind::kW2Stretched || rk == RowKind::kW4Asym;
  const int64_t unit = group_pad ? g : kA8Block;
  const int64_t kq = (k + unit - 1) / unit * unit;
  const int64_t nbq = kq / kA8Block, nb = (k + kA8Block - 1) / kA8Block;
  const int64_t bpg = (g + kA8Block - 1) / kA8Block;
  const int64_t rows_per_block = std::max<int64_t>(1, std::min<int64_t>(8, (kA8MaxK + a8::Scratch::kPad) / kq));
  const size_t row_bytes = quant::RowBytes(f, k);
  ARow arows[8];
  for (int64_t r0 = 0; r0 < m; r0 += rows_per_block) {
    const int64_t mb = std::min(rows_per_block, m - r0);
    for (int64_t r = 0; r < mb; ++r) {
      int8_t* xq = s.xq + r * kq;
      float* d = s.d + r * nbq;
      int32_t* bsum = s.bsum + r * nbq;
      float* sxg = s.sxg + r * nbq;
      QuantizeRow(x + (r0 + r) * k, k, kq, kA8Block, xq, d, bsum);
      for (int64_t G = 0; G < ng; ++G) {  // sx_G = Σ_b d_b · float(bsum_b), b ascending
        const int64_t b0 = G * bpg, b1 = std::min(nb, b0 + bpg);
        float sx = 0.0f;
        for (int64_t b = b0; b < b1; ++b) sx += d[b] * static_cast<float>(bsum[b]);
        sxg[G] = sx;
      }
      arows[r] = {xq, d, sxg, nb};
    }
    float* yb = y + r0 * n;
    switch (rk) {
      case RowKind::kW2Asym:
        if (g == 32) RunPlanes<2, 32, false>(mb, arows, w, row_bytes, n, ng, bias, yb);
        if (g == 64) RunPlanes<2, 64, false>(mb, arows, w, row_bytes, n, ng, bias, yb);
        if (g == 128) RunPlanes<2, 128, false>(mb, arows, w, row_bytes, n, ng, bias, yb);
        break;
      case RowKind::kW2Stretched:
        if (g == 32) RunPlanes<2, 32, true>(mb, arows, w, row_bytes, n, ng, bias, yb);
        if (g == 64) RunPlanes<2, 64, true>(mb, arows, w, row_bytes, n, ng, bias, yb);
        break;
      case RowKind::kW4Asym:
        if (g == 32) RunPlanes<4, 32, false>(mb, arows, w, row_bytes, n, ng, bias, yb);
        if (g == 64) RunPlanes<4, 64, false>(mb, arows, w, row_bytes, n, ng, bias, yb);
        break;
      case RowKind::kW8:
        RunRows(mb, arows, w, row_bytes, n, bias, yb, [&](const uint8_t* row, const ARow& a) {
          return RowDotW8(row, k, a, s.bsum + (a.d - s.d));
        });
        break;
      case RowKind::kW2DQ:
        if (g == 32) RunDQ<32>(mb, arows, w, row_bytes, n, ng, f.block_bytes, bias, yb);
        if (g == 64) RunDQ<64>(mb, arows, w, row_bytes, n, ng, f.block_bytes, bias, yb);
        break;
      case RowKind::kT1:
        RunRows(mb, arows, w, row_bytes, n, bias, yb, [&](const uint8_t* row, const ARow& a) { return RowDotT1(row, ng, a); });
        break;
      case RowKind::kW3:
        if (g == 32) RunRows(mb, arows, w, row_bytes, n, bias, yb, [&](const uint8_t* row, const ARow& a) { return RowDotW3<32>(row, ng, a); });
        if (g == 64) RunRows(mb, arows, w, row_bytes, n, bias, yb, [&](const uint8_t* row, const ARow& a) { return RowDotW3<64>(row, ng, a); });
        break;
      case RowKind::kGeneric:
        RunRows(mb, arows, w, row_bytes, n, bias, yb, [&](const uint8_t* row, const ARow& a) { return RowDotGeneric(f, row, k, ng, a); });
        break;
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bitlens::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitlens::kernels {

HWY_EXPORT(QMatMulA8Impl);

namespace {
// The in-place row kernel for f, chosen from the table entry's properties
// (bits, group, scale encoding and block size); kGeneric for everything else.
a8::RowKind KindOf(const quant::FormatInfo& f) {
  using quant::ScaleEncoding;
  const int g = f.group_size;
  if (f.encoding == ScaleEncoding::kF16ScaleMin && f.block_weights == g && f.row_header_bytes == 0) {
    if (f.bits == 2 && (g == 32 || g == 64 || g == 128) && f.block_bytes == 4 + g / 4) return a8::RowKind::kW2Asym;
    if (f.bits == 4 && (g == 32 || g == 64) && f.block_bytes == 4 + g / 2) return a8::RowKind::kW4Asym;
  }
  if (f.encoding == ScaleEncoding::kF16ScaleStretched && f.bits == 2 && (g == 32 || g == 64) &&
      f.block_weights == g && f.block_bytes == 2 + g / 4 && f.row_header_bytes == 0) {
    return a8::RowKind::kW2Stretched;
  }
  if (f.encoding == ScaleEncoding::kF32ScalePerRow && f.bits == 8 && g == 0 && f.row_header_bytes == 4) {
    return a8::RowKind::kW8;
  }
  if (f.encoding == ScaleEncoding::kDoubleQuantScaleMin && f.bits == 2 && f.block_weights == quant::kDqBlock &&
      (g == 32 || g == 64) && f.block_bytes == quant::kDqHeaderBytes + quant::kDqBlock / g + quant::kDqBlock / 4) {
    return a8::RowKind::kW2DQ;
  }
  if (f.encoding == ScaleEncoding::kF16ScaleTernary && g == quant::kT1Block && f.block_weights == g &&
      f.block_bytes == 2 + quant::kT1Bytes5 + quant::kT1Bytes4) {
    return a8::RowKind::kT1;
  }
  if (f.encoding == ScaleEncoding::kF16ScaleMin && f.bits == 3 && (g == 32 || g == 64) && f.block_weights == g &&
      f.block_bytes == 4 + g / 4 + g / 8) {
    return a8::RowKind::kW3;
  }
  return a8::RowKind::kGeneric;
}
}  // namespace

void QMatMulA8(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
               int64_t k, const float* bias, float* y) {
  if (m <= 0 || n <= 0) return;
  // CPUs with AVX-512 VNNI: the 16-row vpdpbusd kernel for the 2-bit plane
  // formats it covers (same result bit for bit, any m).
  if (QMatMulVnni(x, m, f, w, n, k, bias, y)) return;
  // Decode of the 2-bit plane formats with groups <= 64: the table kernel
  // computes the same result bit for bit and was faster on the decode
  // shapes (docs/kernels.md, "LUT kernels"). It works 16-64 rows per tile,
  // so small n stays here.
  if (m == 1 && n >= 64 && LutSupports(f, k) && LutActivationBlock(f) == kA8Block) {
    return QMatMulLut(x, m, f, w, n, k, bias, y);
  }
  QMatMulA8Dots(x, m, f, w, n, k, bias, y);
}

void QMatMulA8Dots(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                   int64_t k, const float* bias, float* y) {
  if (m <= 0 || n <= 0) return;
  HWY_DYNAMIC_DISPATCH(QMatMulA8Impl)(x, m, f, static_cast<int>(KindOf(f)), w, n, k, bias, y);
}

}  // namespace bitlens::kernels
#endif  // HWY_ONCE
