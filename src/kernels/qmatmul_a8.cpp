// kernels/qmatmul_a8: Highway kernel of the W2A8 path (see qmatmul_a8.h for
// the definition it reproduces bit for bit). The calling thread quantizes a
// block of x rows into a fixed stack buffer; workers split the output rows.
// Integer dots widen u8 codes and i8 activations to i16 and multiply-add
// pairs into i32 (pmaddwd / vmlal via ReorderWidenMulAccumulate), which is
// exact, so only the per-block f32 steps fix the order, done lane-free.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qmatmul_a8.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/highway.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "base/thread_pool.h"
#include "kernels/qmatmul_a8.h"
#include "quant/grid.h"

// Each f32 product and sum is rounded on its own, as in QMatMulA8Ref.
#pragma GCC optimize("fp-contract=off")

#ifndef BITLENS_QMATMUL_A8_SHARED
#define BITLENS_QMATMUL_A8_SHARED
namespace bitlens::kernels::a8 {

// Which row kernel reads a format's blocks. kGeneric decodes through
// quant::DecodeRow (any format with a grid); the others read blocks in place.
enum class RowKind { kGeneric, kW2Asym, kW2Stretched, kW4Asym, kW8 };

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

inline float RoundEven(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 · 2^23, as in the reference
  return (v + kMagic) - kMagic;
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

// x [k] -> xq [kq] (zeros past k), d and bsum [kq / 32]; equal to
// QuantizeActivationsA8Ref on the first ceil(k/32) blocks, zero blocks after.
void QuantizeRow(const float* HWY_RESTRICT x, int64_t k, int64_t kq, int8_t* HWY_RESTRICT xq,
                 float* HWY_RESTRICT d, int32_t* HWY_RESTRICT bsum) {
  const hn::CappedTag<float, kA8Block> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::Rebind<int16_t, decltype(df)> d16;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const auto magic = hn::Set(df, 12582912.0f);
  const auto lo = hn::Set(df, -127.0f), hi = hn::Set(df, 127.0f);
  alignas(64) float tail[kA8Block];
  for (int64_t i0 = 0; i0 < kq; i0 += kA8Block) {
    const int64_t b = i0 / kA8Block;
    if (i0 >= k) {
      std::memset(xq + i0, 0, kA8Block);
      d[b] = 0.0f;
      bsum[b] = 0;
      continue;
    }
    const float* xb = x + i0;
    if (i0 + kA8Block > k) {  // ragged last block: zero-padded copy
      std::memset(tail, 0, sizeof(tail));
      std::memcpy(tail, xb, static_cast<size_t>(k - i0) * sizeof(float));
      xb = tail;
    }
    auto vmax = hn::Zero(df);
    for (int64_t j = 0; j < kA8Block; j += lanes) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + j)));
    const float amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    d[b] = amax / 127.0f;
    const auto vinv = hn::Set(df, inv);
    auto vsum = hn::Zero(di);
    for (int64_t j = 0; j < kA8Block; j += lanes) {
      auto v = hn::Mul(hn::LoadU(df, xb + j), vinv);
      v = hn::Sub(hn::Add(v, magic), magic);
      const auto q = hn::ConvertTo(di, hn::Min(hn::Max(v, lo), hi));
      vsum = hn::Add(vsum, q);
      hn::StoreU(hn::DemoteTo(d8, hn::DemoteTo(d16, q)), d8, xq + i0 + j);
    }
    bsum[b] = hn::GetLane(hn::SumOfLanes(di, vsum));
  }
}

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
      QuantizeRow(x + (r0 + r) * k, k, kq, xq, d, bsum);
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
        if (g == 32) RunRows(mb, arows, w, row_bytes, n, bias, yb, [&](const uint8_t* row, const ARow& a) { return RowDotPlanes<2, 32, false>(row, ng, a); });
        if (g == 64) RunRows(mb, arows, w, row_bytes, n, bias, yb, [&](const uint8_t* row, const ARow& a) { return RowDotPlanes<2, 64, false>(row, ng, a); });
        if (g == 128) RunRows(mb, arows, w, row_bytes, n, bias, yb, [&](const uint8_t* row, const ARow& a) { return RowDotPlanes<2, 128, false>(row, ng, a); });
        break;
      case RowKind::kW2Stretched:
        if (g == 32) RunRows(mb, arows, w, row_bytes, n, bias, yb, [&](const uint8_t* row, const ARow& a) { return RowDotPlanes<2, 32, true>(row, ng, a); });
        if (g == 64) RunRows(mb, arows, w, row_bytes, n, bias, yb, [&](const uint8_t* row, const ARow& a) { return RowDotPlanes<2, 64, true>(row, ng, a); });
        break;
      case RowKind::kW4Asym:
        if (g == 32) RunRows(mb, arows, w, row_bytes, n, bias, yb, [&](const uint8_t* row, const ARow& a) { return RowDotPlanes<4, 32, false>(row, ng, a); });
        if (g == 64) RunRows(mb, arows, w, row_bytes, n, bias, yb, [&](const uint8_t* row, const ARow& a) { return RowDotPlanes<4, 64, false>(row, ng, a); });
        break;
      case RowKind::kW8:
        RunRows(mb, arows, w, row_bytes, n, bias, yb, [&](const uint8_t* row, const ARow& a) {
          return RowDotW8(row, k, a, s.bsum + (a.d - s.d));
        });
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
  return a8::RowKind::kGeneric;
}
}  // namespace

void QMatMulA8(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
               int64_t k, const float* bias, float* y) {
  if (m <= 0 || n <= 0) return;
  HWY_DYNAMIC_DISPATCH(QMatMulA8Impl)(x, m, f, static_cast<int>(KindOf(f)), w, n, k, bias, y);
}

}  // namespace bitlens::kernels
#endif  // HWY_ONCE
