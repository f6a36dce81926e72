// kernels/qmatmul_lut: the Highway table kernels for the 2-bit plane formats
// and t1 (see qmatmul_lut.h for the result they reproduce bit for bit).
//
// t1: 256-entry tables per trit byte (LutT1Rows, below); scalar lookups.
// 2-bit: a tile is 16 code bytes (64 weights) of R = 16·(vector bytes / 16) output
// rows: row 16·c + r sits in byte lane r of 128-bit block c. The 16 row
// vectors are transposed in registers so vector j holds code byte j of every
// row; its low and high nibbles then index that byte's two 16-entry tables
// with one byte shuffle each. A table entry is an int16 split into a low-byte
// and a high-byte table, so two shuffles and an interleave give 16-bit sums
// (a block's at most 32 lookups of |entry| <= 508 fit in int16). After each
// group the sums are widened, and the f32 steps run with one row per lane —
// the scalar order of the reference in every lane.
//
// No contraction into fused multiply-adds: every f32 step is rounded alone.
#pragma GCC optimize("fp-contract=off")
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qmatmul_lut.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/highway.h"
#include "kernels/qmatmul_a8-inl.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "base/f16.h"
#include "base/thread_pool.h"
#include "kernels/qmatmul_a8.h"
#include "kernels/qmatmul_lut.h"
#include "kernels/qmatmul_lut_kind.h"
#include "quant/block_codes.h"
#include "quant/grid.h"

#ifndef BITLENS_QMATMUL_LUT_SHARED
#define BITLENS_QMATMUL_LUT_SHARED
namespace bitlens::kernels::lut {

// Weights whose tables one worker holds at once (64 table bytes per code
// byte: 32 KiB on its stack, about L1). A multiple of every group and tile.
constexpr int64_t kChunk = 2048;
constexpr int kTableBytesPerCode = 64;

// The quantized activations of one x row, on the calling thread's stack.
struct Scratch {
  alignas(64) int8_t xq[kA8MaxK + 128];
  float d[(kA8MaxK + 128) / kA8Block];
  int32_t bsum[(kA8MaxK + 128) / kA8Block];
  float sxg[(kA8MaxK + 128) / kA8Block];
};

struct ARow {
  const int8_t* xq;  // [ng·g], zeros past k
  const float* d;    // per activation block
  const int32_t* bsum;
  const float* sxg;  // per group: Σ_b d_b·float(bsum_b)
  int64_t nb;        // valid activation blocks
};

alignas(64) constexpr uint8_t kZeroCodes[64] = {};

// t1: digit p of a trit byte b, minus 1 (quant::TritAt's formula, also for
// the 4-digit bytes), for building the 256-entry tables with vector lanes.
struct TritDigits {
  int16_t v[5][256];
};
constexpr TritDigits MakeTritDigits() {
  TritDigits t{};
  constexpr int kPow3[5] = {1, 3, 9, 27, 81};
  for (int p = 0; p < 5; ++p) {
    for (int b = 0; b < 256; ++b) t.v[p][b] = static_cast<int16_t>((((b * kPow3[p]) & 255) * 3 >> 8) - 1);
  }
  return t;
}
alignas(64) inline constexpr TritDigits kTritDigits = MakeTritDigits();
constexpr int kT1Tables = 52;  // 48 bytes of 5 trits, 4 of 4

// Exact f16 -> f32 for finite values (zeros and subnormals included).
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t bits = static_cast<uint32_t>(h & 0x7fffu) << 13;
  float f;
  std::memcpy(&f, &bits, 4);
  f *= 5.192296858534828e+33f;  // 2^112
  std::memcpy(&bits, &f, 4);
  bits |= sign;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace bitlens::kernels::lut
#endif

HWY_BEFORE_NAMESPACE();
namespace bitlens::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using lut::ARow;

// Exact integer definition, one row at a time: the path of targets without
// 128-bit byte shuffles of fixed size (scalar emulation, scalable vectors).
template <int G, bool kStretched>
float RowDirect(const uint8_t* row, int64_t ng, const ARow& a) {
  constexpr int Q = G / 4, H = kStretched ? 2 : 4, BS = G == 128 ? 64 : kA8Block, BPG = G / BS;
  float sum = 0.0f;
  for (int64_t g = 0; g < ng; ++g, row += H + Q) {
    uint16_t s16, m16 = 0;
    std::memcpy(&s16, row, 2);
    if constexpr (!kStretched) std::memcpy(&m16, row + 2, 2);
    const float scale = F16ToF32(s16);
    const float offset = kStretched ? -1.5f * scale : F16ToF32(m16);
    int32_t isum[BPG] = {};
    for (int i = 0; i < G; ++i) {
      const int code = (row[H + i % Q] >> (2 * (i / Q))) & 3;
      isum[i / BS] += a.xq[g * G + i] * code;
    }
    float acc = 0.0f;
    for (int b = 0; b < BPG && g * BPG + b < a.nb; ++b) acc += a.d[g * BPG + b] * static_cast<float>(isum[b]);
    sum += scale * acc + offset * a.sxg[g];
  }
  return sum;
}

#if HWY_TARGET != HWY_SCALAR && !HWY_HAVE_SCALABLE

using D8 = hn::ScalableTag<uint8_t>;
using V8 = hn::Vec<D8>;

// Tables of code bytes [0, n_codes) of a chunk whose activations start at xg:
// code byte c = (group G, byte j) gets 64 bytes at tables + 64·c:
// [low-nibble table: 16 low bytes, 16 high bytes][high-nibble table: same].
template <int G>
void BuildTables(const int8_t* HWY_RESTRICT xg, int64_t n_codes, uint8_t* HWY_RESTRICT tables) {
  constexpr int Q = G / 4;
  const hn::CappedTag<int16_t, 16> d16;
  const hn::Rebind<uint8_t, decltype(d16)> du8;
  const hn::Rebind<int8_t, decltype(d16)> di8;
  const int L = static_cast<int>(hn::Lanes(d16));
  alignas(32) static constexpr int16_t kC0[16] = {-2, -1, 0, 1, -2, -1, 0, 1, -2, -1, 0, 1, -2, -1, 0, 1};
  alignas(32) static constexpr int16_t kC1[16] = {-2, -2, -2, -2, -1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 1};
  const auto low_mask = hn::Set(d16, 0xFF);
  for (int64_t c = 0; c < n_codes; ++c) {
    const int8_t* xgrp = xg + (c / Q) * G;
    const int j = static_cast<int>(c % Q);
    uint8_t* t = tables + c * lut::kTableBytesPerCode;
    for (int half = 0; half < 2; ++half) {
      const auto xa = hn::Set(d16, static_cast<int16_t>(xgrp[2 * half * Q + j]));
      const auto xb = hn::Set(d16, static_cast<int16_t>(xgrp[(2 * half + 1) * Q + j]));
      for (int i = 0; i < 16; i += L) {
        const auto e = hn::Add(hn::Mul(hn::LoadU(d16, kC0 + i), xa), hn::Mul(hn::LoadU(d16, kC1 + i), xb));
        hn::StoreU(hn::DemoteTo(du8, hn::And(e, low_mask)), du8, t + 32 * half + i);
        hn::StoreU(hn::DemoteTo(di8, hn::ShiftRight<8>(e)), di8, reinterpret_cast<int8_t*>(t + 32 * half + 16 + i));
      }
    }
  }
}

// 16 code bytes of one row for a tile: G = 32 takes 8 bytes from each of two
// consecutive blocks (the second may be missing: zeros), else 16 contiguous.
template <int G, int H>
HWY_INLINE hn::Vec<hn::Full128<uint8_t>> LoadPiece(const uint8_t* p, bool second) {
  const hn::Full128<uint8_t> d;
  if constexpr (G == 32) {
    const hn::Full64<uint8_t> dh;
    const auto lo = hn::LoadU(dh, p);
    const auto hi = hn::LoadU(dh, second ? p + H + 8 : lut::kZeroCodes);
    return hn::Combine(d, hi, lo);
  } else {
    return hn::LoadU(d, p);
  }
}

// A vector whose 128-bit block c holds the piece of tile row 16·c + r, at
// base + row·stride; rows past `last` (a partial tile) read row `last`.
template <int G, int H, class D>
HWY_INLINE hn::Vec<D> LoadRows(D d, const uint8_t* base, size_t stride, int r, int last, bool second) {
  if constexpr (hn::MaxLanes(D()) <= 16) {
    (void)d;
    return LoadPiece<G, H>(base + static_cast<size_t>(std::min(r, last)) * stride, second);
  } else {
    const hn::Half<D> dh;
    constexpr int kHalfRows = static_cast<int>(hn::MaxLanes(D()) / 2);
    return hn::Combine(d, LoadRows<G, H>(dh, base, stride, r + kHalfRows, last, second),
                       LoadRows<G, H>(dh, base, stride, r, last, second));
  }
}

// The same for a full tile: block c of row r's vector is at p + c·step
// (p = row r's piece, step = 16 rows).
template <int G, int H, class D>
HWY_INLINE hn::Vec<D> LoadRowsFull(D d, const uint8_t* p, size_t step, bool second) {
  if constexpr (hn::MaxLanes(D()) <= 16) {
    (void)d;
    (void)step;
    return LoadPiece<G, H>(p, second);
  } else {
    const hn::Half<D> dh;
    constexpr size_t kHalfBlocks = hn::MaxLanes(D()) / 32;
    return hn::Combine(d, LoadRowsFull<G, H>(dh, p + kHalfBlocks * step, step, second),
                       LoadRowsFull<G, H>(dh, p, step, second));
  }
}

// In each 128-bit block: v[r] byte j (row r, code byte j) -> t[j] byte r.
HWY_INLINE void Transpose16(D8 d, V8* v) {
  const hn::Repartition<uint16_t, D8> d16;
  const hn::Repartition<uint32_t, D8> d32;
  const hn::Repartition<uint64_t, D8> d64;
  V8 a[16];  // a[8h + i]: rows 2i, 2i+1 as 16-bit pairs, bytes 8h .. 8h+7
  for (int i = 0; i < 8; ++i) {
    a[i] = hn::InterleaveLower(d, v[2 * i], v[2 * i + 1]);
    a[8 + i] = hn::InterleaveUpper(d, v[2 * i], v[2 * i + 1]);
  }
  V8 b[16];  // b[8h + 4q + i]: rows 4i .. 4i+3 as 32-bit quads, bytes 8h + 4q .. +3
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < 4; ++i) {
      const auto x = hn::BitCast(d16, a[8 * h + 2 * i]), y = hn::BitCast(d16, a[8 * h + 2 * i + 1]);
      b[8 * h + i] = hn::BitCast(d, hn::InterleaveLower(d16, x, y));
      b[8 * h + 4 + i] = hn::BitCast(d, hn::InterleaveUpper(d16, x, y));
    }
  }
  V8 c[16];  // c[8h + 4q + 2s + i]: rows 8i .. 8i+7, bytes 8h + 4q + 2s, +1
  for (int hq = 0; hq < 4; ++hq) {
    for (int i = 0; i < 2; ++i) {
      const auto x = hn::BitCast(d32, b[4 * hq + 2 * i]), y = hn::BitCast(d32, b[4 * hq + 2 * i + 1]);
      c[4 * hq + i] = hn::BitCast(d, hn::InterleaveLower(d32, x, y));
      c[4 * hq + 2 + i] = hn::BitCast(d, hn::InterleaveUpper(d32, x, y));
    }
  }
  for (int s = 0; s < 8; ++s) {  // s = 4h + 2q' ... pairs (rows 0-7, rows 8-15)
    const auto x = hn::BitCast(d64, c[2 * s]), y = hn::BitCast(d64, c[2 * s + 1]);
    v[2 * s] = hn::BitCast(d, hn::InterleaveLower(d64, x, y));
    v[2 * s + 1] = hn::BitCast(d, hn::InterleaveUpper(d64, x, y));
  }
}

// Rows of one tile handled by f32 vector v (0..3) lane i: the i16 sums of
// rows 0-7 of each block come from the low interleave, 8-15 from the high
// one; each is widened in two halves.
HWY_INLINE int PermRow(int v, int i, int l16) {
  const int l = i + ((v & 1) ? l16 / 2 : 0);
  return 16 * (l / 8) + (v >= 2 ? 8 : 0) + l % 8;
}

template <int G, bool kStretched>
void LutRows(const ARow& a, const uint8_t* w, size_t row_bytes, int64_t ng, int64_t o_begin, int64_t o_end,
             const float* bias, float* y) {
  constexpr int Q = G / 4, H = kStretched ? 2 : 4, BS = G == 128 ? 64 : kA8Block, BPG = G / BS;
  constexpr int kGroupsPerChunk = static_cast<int>(lut::kChunk / G);
  const D8 d8;
  const hn::Repartition<int16_t, D8> d16;
  const hn::Half<decltype(d16)> dh16;
  const hn::Rebind<int32_t, decltype(dh16)> d32;
  const hn::Rebind<float, decltype(dh16)> df;
  const hn::Repartition<uint16_t, decltype(d32)> du16;
  const hn::Half<decltype(du16)> dh16u;
  const hn::Rebind<hwy::float16_t, decltype(df)> dhf;
  constexpr int R = static_cast<int>(hn::MaxLanes(D8()));
  const int l16 = R / 2, lf = R / 4;
  alignas(64) uint8_t tables[lut::kChunk / 4 * lut::kTableBytesPerCode];
  alignas(64) float sums[4][R / 4];
  alignas(64) int32_t perm[4][R / 4];
  hn::Vec<decltype(d32)> perm_v[4];
  for (int v = 0; v < 4; ++v) {
    for (int i = 0; i < lf; ++i) perm[v][i] = PermRow(v, i, l16);
    perm_v[v] = hn::Load(d32, perm[v]);
  }
  const auto nib = hn::Set(d8, 0x0F);
  for (int64_t g0 = 0; g0 < ng; g0 += kGroupsPerChunk) {
    const int64_t g1 = std::min<int64_t>(ng, g0 + kGroupsPerChunk);
    const int64_t n_codes = (g1 - g0) * Q;
    BuildTables<G>(a.xq + g0 * G, n_codes, tables);
    for (int64_t o0 = o_begin; o0 < o_end; o0 += R) {
      const int valid = static_cast<int>(std::min<int64_t>(R, o_end - o0));
      hn::Vec<decltype(df)> s[4];
      hn::Vec<decltype(d32)> offsets[4];  // byte offsets of the lanes' rows (invalid rows read row 0)
      for (int v = 0; v < 4; ++v) {
        offsets[v] = hn::Mul(hn::Min(perm_v[v], hn::Set(d32, valid - 1)), hn::Set(d32, static_cast<int32_t>(row_bytes)));
        for (int i = 0; i < lf; ++i) {
          const int r = perm[v][i];
          sums[v][i] = (g0 > 0 && r < valid) ? y[o0 + r] : 0.0f;
        }
        s[v] = hn::Load(df, sums[v]);
      }
      // Adds the finished group gabs (its block sums in acc[b][0..1]) to s.
      auto finish = [&](int64_t gabs, const hn::Vec<decltype(d16)>* acc) {
        hn::Vec<decltype(df)> accf[4];
        for (int v = 0; v < 4; ++v) accf[v] = hn::Zero(df);
        for (int b = 0; b < BPG && gabs * BPG + b < a.nb; ++b) {
          const int64_t gb = gabs * BPG + b;
          const auto shift = hn::Set(d32, 2 * a.bsum[gb]);
          const auto dv = hn::Set(df, a.d[gb]);
          for (int v = 0; v < 4; ++v) {
            const auto half = (v & 1) ? hn::UpperHalf(dh16, acc[2 * b + (v >> 1)]) : hn::LowerHalf(dh16, acc[2 * b + (v >> 1)]);
            const auto isum = hn::Add(hn::PromoteTo(d32, half), shift);
            accf[v] = hn::Add(accf[v], hn::Mul(dv, hn::ConvertTo(df, isum)));
          }
        }
        // Each row's first 4 block bytes (f16 scale, then f16 min or codes),
        // gathered for the rows of every lane; f16 -> f32 is exact.
        const int32_t* base = reinterpret_cast<const int32_t*>(w + o0 * row_bytes + static_cast<size_t>(gabs) * (H + Q));
        const auto sx = hn::Set(df, a.sxg[gabs]);
        // Two vectors of words: even u16 lanes are the scales, odd ones the mins.
        for (int v = 0; v < 4; v += 2) {
          const auto w0 = hn::BitCast(du16, hn::GatherOffset(d32, base, offsets[v]));
          const auto w1 = hn::BitCast(du16, hn::GatherOffset(d32, base, offsets[v + 1]));
          const auto ev = hn::ConcatEven(du16, w1, w0);
          const auto s0 = hn::PromoteTo(df, hn::BitCast(dhf, hn::LowerHalf(dh16u, ev)));
          const auto s1 = hn::PromoteTo(df, hn::BitCast(dhf, hn::UpperHalf(dh16u, ev)));
          hn::Vec<decltype(df)> o0v, o1v;
          if constexpr (kStretched) {
            o0v = hn::Mul(hn::Set(df, -1.5f), s0);
            o1v = hn::Mul(hn::Set(df, -1.5f), s1);
          } else {
            const auto od = hn::ConcatOdd(du16, w1, w0);
            o0v = hn::PromoteTo(df, hn::BitCast(dhf, hn::LowerHalf(dh16u, od)));
            o1v = hn::PromoteTo(df, hn::BitCast(dhf, hn::UpperHalf(dh16u, od)));
          }
          s[v] = hn::Add(s[v], hn::Add(hn::Mul(s0, accf[v]), hn::Mul(o0v, sx)));
          s[v + 1] = hn::Add(s[v + 1], hn::Add(hn::Mul(s1, accf[v + 1]), hn::Mul(o1v, sx)));
        }
      };
      hn::Vec<decltype(d16)> acc[4];  // [2·block + (rows 0-7 | rows 8-15)]
      for (auto& v : acc) v = hn::Zero(d16);
      const int64_t n_tiles = (n_codes + 15) / 16;
      for (int64_t t = 0; t < n_tiles; ++t) {
        const int64_t cb0 = 16 * t;  // first code byte of the tile in the chunk
        const int64_t gfirst = g0 + cb0 / Q;
        const size_t off = static_cast<size_t>(gfirst) * (H + Q) + H + cb0 % Q;
        const bool second = G == 32 && gfirst + 1 < g1;
        const uint8_t* base = w + o0 * row_bytes + off;
        V8 vr[16];
        if (valid == R) {
          const uint8_t* p = base;
          for (int r = 0; r < 16; ++r, p += row_bytes) vr[r] = LoadRowsFull<G, H>(d8, p, 16 * row_bytes, second);
        } else {
          for (int r = 0; r < 16; ++r) vr[r] = LoadRows<G, H>(d8, base, row_bytes, r, valid - 1, second);
        }
        Transpose16(d8, vr);
        const uint8_t* tab = tables + cb0 * lut::kTableBytesPerCode;
        for (int j = 0; j < 16; ++j, tab += lut::kTableBytesPerCode) {
          const V8 lo = hn::And(vr[j], nib);
          const V8 hi = hn::ShiftRight<4>(vr[j]);
          const V8 l0 = hn::TableLookupBytes(hn::LoadDup128(d8, tab), lo);
          const V8 l1 = hn::TableLookupBytes(hn::LoadDup128(d8, tab + 16), lo);
          const V8 h0 = hn::TableLookupBytes(hn::LoadDup128(d8, tab + 32), hi);
          const V8 h1 = hn::TableLookupBytes(hn::LoadDup128(d8, tab + 48), hi);
          // G = 32: bytes 0-7 belong to the first group (block sums acc[0..1]),
          // 8-15 to the second (acc[2..3]). Else low nibbles -> block 0, high -> 1.
          const int al = (G == 32 && j >= 8) ? 2 : 0;
          const int ah = G == 32 ? al : 2;
          acc[al] = hn::Add(acc[al], hn::BitCast(d16, hn::InterleaveLower(d8, l0, l1)));
          acc[al + 1] = hn::Add(acc[al + 1], hn::BitCast(d16, hn::InterleaveUpper(d8, l0, l1)));
          acc[ah] = hn::Add(acc[ah], hn::BitCast(d16, hn::InterleaveLower(d8, h0, h1)));
          acc[ah + 1] = hn::Add(acc[ah + 1], hn::BitCast(d16, hn::InterleaveUpper(d8, h0, h1)));
        }
        if constexpr (G == 32) {
          finish(gfirst, acc);
          if (second) finish(gfirst + 1, acc + 2);
          for (auto& v : acc) v = hn::Zero(d16);
        } else if (G == 64 || (cb0 % Q) + 16 == Q) {  // the group's last tile
          finish(gfirst, acc);
          for (auto& v : acc) v = hn::Zero(d16);
        }
      }
      for (int v = 0; v < 4; ++v) {
        hn::Store(s[v], df, sums[v]);
        for (int i = 0; i < lf; ++i) {
          const int r = perm[v][i];
          if (r >= valid) continue;
          y[o0 + r] = (g1 == ng && bias) ? sums[v][i] + bias[o0 + r] : sums[v][i];
        }
      }
    }
  }
}

#endif  // HWY_TARGET != HWY_SCALAR && !HWY_HAVE_SCALABLE


// t1 tables of one group (activations xg[256]): tables[j][b] for trit byte j
// (j < 48: weights j + 48p, p < 5; else 240 + (j − 48) + 4p, p < 4).
void BuildT1Tables(const int8_t* HWY_RESTRICT xg, int16_t (*HWY_RESTRICT tables)[256]) {
  const hn::ScalableTag<int16_t> d;
  const int L = static_cast<int>(hn::Lanes(d));
  for (int j = 0; j < lut::kT1Tables; ++j) {
    const bool five = j < quant::kT1Bytes5;
    const int digits = five ? 5 : 4;
    int16_t xp[5];
    for (int p = 0; p < digits; ++p) {
      xp[p] = xg[five ? j + quant::kT1Bytes5 * p : quant::kT1Bytes5 * 5 + (j - quant::kT1Bytes5) + quant::kT1Bytes4 * p];
    }
    for (int b = 0; b < 256; b += L) {
      auto e = hn::Zero(d);
      for (int p = 0; p < digits; ++p) e = hn::Add(e, hn::Mul(hn::LoadU(d, lut::kTritDigits.v[p] + b), hn::Set(d, xp[p])));
      hn::StoreU(e, d, tables[j] + b);
    }
  }
}

// t1 rows [o_begin, o_end): one group at a time (its 26 KiB of tables on the
// stack), the rows' running sums kept in y; scalar lookups indexed by the
// trit bytes themselves. Each row's f32 steps are the reference's, in order.
void LutT1Rows(const ARow& a, const uint8_t* w, size_t row_bytes, int64_t ng, int64_t o_begin, int64_t o_end,
               const float* bias, float* y) {
  alignas(64) int16_t tables[lut::kT1Tables][256];
  constexpr int kBlockBytes = 2 + quant::kT1Bytes5 + quant::kT1Bytes4;
  for (int64_t g = 0; g < ng; ++g) {
    BuildT1Tables(a.xq + g * quant::kT1Block, tables);
    const float dg = a.d[g], sx = a.sxg[g];
    const int32_t bs = a.bsum[g];
    const bool last = g + 1 == ng;
    for (int64_t o = o_begin; o < o_end; ++o) {
      const uint8_t* blk = w + static_cast<size_t>(o) * row_bytes + static_cast<size_t>(g) * kBlockBytes;
      uint16_t s16;
      std::memcpy(&s16, blk, 2);
      const float scale = lut::HalfToFloat(s16);
      const uint8_t* q = blk + 2;
      // Four independent integer chains (exact in any order) instead of one
      // 52-add dependency chain.
      int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int j = 0; j < lut::kT1Tables; j += 4) {
        s0 += tables[j][q[j]];
        s1 += tables[j + 1][q[j + 1]];
        s2 += tables[j + 2][q[j + 2]];
        s3 += tables[j + 3][q[j + 3]];
      }
      const int32_t isum = bs + ((s0 + s1) + (s2 + s3));
      float acc = 0.0f;
      acc += dg * static_cast<float>(isum);
      float sum = g == 0 ? 0.0f : y[o];
      sum += scale * acc + (-scale) * sx;
      y[o] = (last && bias) ? sum + bias[o] : sum;
    }
  }
}

template <int G, bool kStretched>
void RunLut(const ARow& a, const uint8_t* w, size_t row_bytes, int64_t n, int64_t ng, const float* bias, float* y) {
  auto rows = [&](size_t begin, size_t end, size_t /*worker*/) {
#if HWY_TARGET != HWY_SCALAR && !HWY_HAVE_SCALABLE
    LutRows<G, kStretched>(a, w, row_bytes, ng, static_cast<int64_t>(begin), static_cast<int64_t>(end), bias, y);
#else
    for (size_t o = begin; o < end; ++o) {
      const float s = RowDirect<G, kStretched>(w + o * row_bytes, ng, a);
      y[o] = bias ? s + bias[o] : s;
    }
#endif
  };
  // Grain 64: every worker's range is whole tiles of up to 64 rows.
  ParallelFor(static_cast<size_t>(n), 64, rows);
}

void QMatMulLutImpl(const float* x, int64_t m, const quant::FormatInfo& f, int kind, const uint8_t* w,
                    int64_t n, int64_t k, const float* bias, float* y) {
  lut::Scratch s;
  const int g = f.group_size, block = LutActivationBlock(f), bpg = g / block;
  const int64_t ng = quant::NumGroups(f, k), kq = ng * g, nb = (k + block - 1) / block;
  const size_t row_bytes = quant::RowBytes(f, k);
  const bool stretched = static_cast<lut::Kind>(kind) == lut::Kind::kW2Stretched;
  for (int64_t r = 0; r < m; ++r) {
    QuantizeRow(x + r * k, k, kq, block, s.xq, s.d, s.bsum);
    for (int64_t G = 0; G < ng; ++G) {  // sx_G = Σ_b d_b · float(bsum_b), b ascending
      float sx = 0.0f;
      for (int64_t b = G * bpg; b < std::min<int64_t>(nb, (G + 1) * bpg); ++b) sx += s.d[b] * static_cast<float>(s.bsum[b]);
      s.sxg[G] = sx;
    }
    const ARow a{s.xq, s.d, s.bsum, s.sxg, nb};
    float* yr = y + r * n;
    if (static_cast<lut::Kind>(kind) == lut::Kind::kT1) {
      auto rows = [&](size_t begin, size_t end, size_t /*worker*/) {
        LutT1Rows(a, w, row_bytes, ng, static_cast<int64_t>(begin), static_cast<int64_t>(end), bias, yr);
      };
      ParallelFor(static_cast<size_t>(n), 16, rows);
    } else if (stretched) {
      if (g == 32) RunLut<32, true>(a, w, row_bytes, n, ng, bias, yr);
      if (g == 64) RunLut<64, true>(a, w, row_bytes, n, ng, bias, yr);
    } else {
      if (g == 32) RunLut<32, false>(a, w, row_bytes, n, ng, bias, yr);
      if (g == 64) RunLut<64, false>(a, w, row_bytes, n, ng, bias, yr);
      if (g == 128) RunLut<128, false>(a, w, row_bytes, n, ng, bias, yr);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bitlens::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitlens::kernels {

HWY_EXPORT(QMatMulLutImpl);

void QMatMulLut(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                int64_t k, const float* bias, float* y) {
  if (m <= 0 || n <= 0) return;
  HWY_DYNAMIC_DISPATCH(QMatMulLutImpl)(x, m, f, static_cast<int>(lut::KindOf(f)), w, n, k, bias, y);
}

}  // namespace bitlens::kernels
#endif  // HWY_ONCE
