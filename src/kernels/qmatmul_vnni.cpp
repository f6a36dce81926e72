// kernels/qmatmul_vnni: the AVX-512 VNNI kernel of the W2A8 path for the
// 2-bit plane formats (see qmatmul_vnni.h). Compiled for Highway's AVX3_DL
// target (VNNI, VBMI, ...); every other target reports "not available" and
// QMatMulA8 runs its portable kernel, which gives the same result.
//
// Why this shape. A 2-bit weight is 2.5 bits of traffic, so streaming at the
// triad needs ~25 weights per cycle per core: one vpdpbusd (64 u8×s8 products
// into 16 i32 lanes) per 64 weights, and almost nothing else. The reference
// needs one exact int32 sum per (output row, 32 activations); reducing vector
// lanes per row would cost more than the dots. So 16 output rows are
// processed at once and their code bytes transposed in registers (16 bytes of
// 16 rows: 4 loads + 12 inserts + 8 unpacks), after which lane i of every
// vector is row i: the 4 code bytes of a lane meet 4 consecutive activations
// broadcast from memory, the sums land per row, and the f32 steps of the
// reference run with one row per lane (the scalar sequence in every lane).
// Codes are taken out of their plane by a mask only (q·4^p); each plane has
// its own accumulator and the exact shift right by 2p comes once per group.
//
// Each f32 product and sum is rounded on its own, as in QMatMulA8Ref.
#pragma GCC optimize("fp-contract=off")
// Compile Highway's AVX3_DL target in this file (libhwy detects it at run
// time; Highway 1.0.3 builds it only on request).
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qmatmul_vnni.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/highway.h"
// The activation quantizer shared with qmatmul_a8; also after foreach_target.h.
#include "kernels/qmatmul_a8-inl.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "base/thread_pool.h"
#include "kernels/qmatmul_a8.h"
#include "kernels/qmatmul_vnni.h"
#include "quant/block_codes.h"
#include "quant/grid.h"

#if HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#endif

#ifndef BITLENS_QMATMUL_VNNI_SHARED
#define BITLENS_QMATMUL_VNNI_SHARED
namespace bitlens::kernels::vnni {

// The formats of the kernel, by block layout (quant/formats.h): 2-bit
// w2g64, w2g128, w2sg64, w2g32dq, w2g64dq and 4-bit w4g32, w4g64 (the usual
// format of embeddings and tied LM heads, which decode streams too).
enum Kind : int { kAsym64, kAsym128, kStretch64, kDQ32, kDQ64, kAsym4g32, kAsym4g64, kNone };

// Per kind: code bits, bytes and weights of a block, offset of the codes,
// 16-byte chunks of codes, accumulators (one per plane, or per plane and half
// for the 256-weight super-blocks), weight groups per block.
constexpr int Bits(int k) { return k == kAsym4g32 || k == kAsym4g64 ? 4 : 2; }
constexpr int BlockBytes(int k) {
  return k == kAsym64 || k == kAsym4g32 ? 20 : k == kAsym128 || k == kAsym4g64 ? 36 : k == kStretch64 ? 18 : k == kDQ32 ? 78 : 74;
}
constexpr int BlockWeights(int k) {
  return k == kAsym4g32 ? 32 : k == kAsym64 || k == kStretch64 || k == kAsym4g64 ? 64 : k == kAsym128 ? 128 : 256;
}
constexpr int CodeOffset(int k) { return k == kStretch64 ? 2 : k == kDQ32 ? 14 : k == kDQ64 ? 10 : 4; }
constexpr int CodeBytes(int k) { return BlockWeights(k) * Bits(k) / 8; }
constexpr int Chunks(int k) { return CodeBytes(k) / 16; }
constexpr int Planes(int k) { return 8 / Bits(k); }
constexpr int Accumulators(int k) { return k == kDQ32 || k == kDQ64 ? 8 : Planes(k); }
constexpr int GroupsPerBlock(int k) { return k == kDQ32 ? 8 : k == kDQ64 ? 4 : 1; }
// Chunk c (16 code bytes), plane p: the accumulator it adds to and where its
// 16 activations start within the block. Plane p of a block with Q code bytes
// is weights p·Q .. p·Q + Q − 1 (formats.h), chunk c its bytes 16c..16c+15.
constexpr int Slot(int k, int c, int p) { return Accumulators(k) == 8 ? 2 * p + c / 2 : p; }
constexpr int ActOffset(int k, int c, int p) { return p * CodeBytes(k) + 16 * c; }

// Quantized activation rows of one call, on the calling thread's stack (as in
// qmatmul_a8, padded to whole blocks of up to 256 weights).
struct Scratch {
  static constexpr int64_t kPad = 256;
  alignas(64) int8_t xq[kA8MaxK + kPad];
  float d[(kA8MaxK + kPad) / kA8Block];
  int32_t bsum[(kA8MaxK + kPad) / kA8Block];
  float sxg[(kA8MaxK + kPad) / kA8Block];
};

// One quantized x row as the tiles read it.
struct ARow {
  const int8_t* xq;   // [nblk · block weights], zero past k
  const float* d;     // per activation block of 32
  const float* sxg;   // per weight group: Σ_b d_b · bsum_b
};

}  // namespace bitlens::kernels::vnni
#endif

HWY_BEFORE_NAMESPACE();
namespace bitlens::kernels {
namespace HWY_NAMESPACE {

#if HWY_TARGET == HWY_AVX3_DL
// vpdpbusd needs AVX512_VNNI, which Highway's AVX3_DL target implies (its
// detection requires VNNI) but does not name in its target string.
// GCC: a target pragma adds it to Highway's options. Clang's does not nest
// inside Highway's attribute push, so there every function names the whole set.
#if defined(__clang__)
#define BL_VNNI_TARGET __attribute__((target(HWY_TARGET_STR ",avx512vnni")))
#else
#define BL_VNNI_TARGET
#pragma GCC push_options
#pragma GCC target("avx512vnni")
#endif

using vnni::ARow;

// Rows of a full tile: base + i · row_bytes.
struct StrideRows {
  const uint8_t* base;
  size_t row_bytes;
  HWY_INLINE const uint8_t* operator()(int i) const { return base + static_cast<size_t>(i) * row_bytes; }
};
// Rows of the last, partial tile: rows past the end repeat the last row (their
// lanes are computed and dropped).
struct ClampRows {
  const uint8_t* base;
  size_t row_bytes;
  int last;
  HWY_INLINE const uint8_t* operator()(int i) const {
    return base + static_cast<size_t>(std::min(i, last)) * row_bytes;
  }
};

// The 16 code bytes at `off` of rows 0..15 -> W[t], lane i = bytes 4t..4t+3
// of row i: rows j, j+4, j+8, j+12 fill the 128-bit blocks of z[j], then a
// 4×4 transpose of 32-bit lanes inside each block.
template <class Rows>
HWY_INLINE BL_VNNI_TARGET void LoadTransposed(const Rows& rows, size_t off, __m512i* HWY_RESTRICT W) {
  __m512i z[4];
  for (int j = 0; j < 4; ++j) {
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rows(j) + off)));
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows(j + 4) + off)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows(j + 8) + off)), 2);
    z[j] = _mm512_inserti32x4(v, _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows(j + 12) + off)), 3);
  }
  const __m512i a0 = _mm512_unpacklo_epi32(z[0], z[1]), a1 = _mm512_unpackhi_epi32(z[0], z[1]);
  const __m512i a2 = _mm512_unpacklo_epi32(z[2], z[3]), a3 = _mm512_unpackhi_epi32(z[2], z[3]);
  W[0] = _mm512_unpacklo_epi64(a0, a2);
  W[1] = _mm512_unpackhi_epi64(a0, a2);
  W[2] = _mm512_unpacklo_epi64(a1, a3);
  W[3] = _mm512_unpackhi_epi64(a1, a3);
}

HWY_INLINE BL_VNNI_TARGET __m512i Broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

HWY_INLINE BL_VNNI_TARGET __m512 HalvesLow(__m512i h) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)); }
HWY_INLINE BL_VNNI_TARGET __m512 HalvesHigh(__m512i h) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(h, 16))); }

// acc_G = Σ_b d_b · float(isum_b) over the group's valid blocks (b < nb), then
// sum += scale · acc_G + offset · sx_G: the reference's sequence, per lane.
template <int NB>
HWY_INLINE BL_VNNI_TARGET __m512 GroupTerm(const __m512i* isum, const float* d, int64_t b0, int64_t nb, __m512 scale,
                            __m512 offset, float sx, __m512 sum) {
  __m512 acc = _mm512_mul_ps(_mm512_set1_ps(d[b0]), _mm512_cvtepi32_ps(isum[0]));
  for (int j = 1; j < NB; ++j) {
    // A masked add rather than a branch: with a branch the compiler moved the
    // block's dots into it and broadcast their activations through registers.
    const __mmask16 valid = b0 + j < nb ? 0xFFFF : 0;
    acc = _mm512_mask_add_ps(acc, valid, acc, _mm512_mul_ps(_mm512_set1_ps(d[b0 + j]), _mm512_cvtepi32_ps(isum[j])));
  }
  const __m512 term = _mm512_add_ps(_mm512_mul_ps(scale, acc), _mm512_mul_ps(offset, _mm512_set1_ps(sx)));
  return _mm512_add_ps(sum, term);
}

// Code dword t of chunk c of block bi (lane i = row i) into the accumulators
// of MR x rows: per plane, the mask keeps q·2^(B·p), vpdpbusd multiplies it
// with the 4 activations of those weights (one broadcast dword).
template <int K, int MR>
HWY_INLINE BL_VNNI_TARGET void AddCodes(__m512i wd, int c, int t, const ARow* a, int64_t bi,
                         __m512i (*HWY_RESTRICT acc)[vnni::Accumulators(K)]) {
  constexpr int kB = vnni::Bits(K), kBW = vnni::BlockWeights(K);
#pragma GCC unroll 4
  for (int p = 0; p < vnni::Planes(K); ++p) {
    const __m512i codes = _mm512_and_si512(wd, _mm512_set1_epi8(static_cast<char>(((1 << kB) - 1) << (kB * p))));
    const int s = vnni::Slot(K, c, p);
    for (int r = 0; r < MR; ++r) {
      acc[r][s] = _mm512_dpbusd_epi32(acc[r][s], codes, Broadcast4(a[r].xq + bi * kBW + vnni::ActOffset(K, c, p) + 4 * t));
    }
  }
}

// The f32 steps of block bi of a one-group-per-block format, from its header
// dword (lane i = row i: f16 scale, then f16 min unless stretched).
template <int K, int MR>
HWY_INLINE BL_VNNI_TARGET void FinishGroup(__m512i h, const __m512i (*HWY_RESTRICT acc)[vnni::Accumulators(K)], const ARow* a,
                            int64_t bi, int64_t nb, __m512* HWY_RESTRICT sums) {
  const __m512 scale = HalvesLow(h);
  const __m512 offset = K == vnni::kStretch64 ? _mm512_mul_ps(_mm512_set1_ps(-1.5f), scale) : HalvesHigh(h);
  for (int r = 0; r < MR; ++r) {
    __m512i isum[4];
    if constexpr (K == vnni::kAsym4g32) {  // low nibbles weights 0..15, high 16..31: one block
      isum[0] = _mm512_add_epi32(acc[r][0], _mm512_srai_epi32(acc[r][1], 4));
      sums[r] = GroupTerm<1>(isum, a[r].d, bi, nb, scale, offset, a[r].sxg[bi], sums[r]);
    } else if constexpr (K == vnni::kAsym4g64) {  // nibble plane p = block p
      for (int p = 0; p < 2; ++p) isum[p] = _mm512_srai_epi32(acc[r][p], 4 * p);
      sums[r] = GroupTerm<2>(isum, a[r].d, 2 * bi, nb, scale, offset, a[r].sxg[bi], sums[r]);
    } else if constexpr (K == vnni::kAsym128) {  // 2-bit plane p = block p
      for (int p = 0; p < 4; ++p) isum[p] = _mm512_srai_epi32(acc[r][p], 2 * p);
      sums[r] = GroupTerm<4>(isum, a[r].d, 4 * bi, nb, scale, offset, a[r].sxg[bi], sums[r]);
    } else {  // groups of 64: planes 0, 1 = block 0; planes 2, 3 = block 1
      isum[0] = _mm512_add_epi32(acc[r][0], _mm512_srai_epi32(acc[r][1], 2));
      isum[1] = _mm512_add_epi32(_mm512_srai_epi32(acc[r][2], 4), _mm512_srai_epi32(acc[r][3], 6));
      sums[r] = GroupTerm<2>(isum, a[r].d, 2 * bi, nb, scale, offset, a[r].sxg[bi], sums[r]);
    }
  }
}

// Formats whose blocks are whole dwords with a one-dword header: four blocks
// are transposed together as 16-byte chunks (5 for 20-byte blocks, 9 for
// 36-byte ones), which brings the headers out as lanes too, with no gather
// (a 16-lane gather per block cost ~25 % of the w2g64 time). w2sg64's 18-byte
// blocks get the same treatment eight at a time (in Tile).
constexpr bool WindowPath(int k) { return k == vnni::kAsym64 || k == vnni::kAsym128 || k == vnni::kAsym4g32 || k == vnni::kAsym4g64; }

// MR x rows against one tile of 16 output rows: sums[r] = the 16 dots of x
// row r before the bias. nblk blocks per row, ng groups, nb activation blocks
// (of 32) with data. `pf` is the next tile's first byte, prefetched along.
template <int K, int MR, class Rows>
HWY_INLINE BL_VNNI_TARGET void Tile(const Rows& rows, __m512i vidx, int64_t nblk, int64_t ng, int64_t nb, const ARow* a,
                     const uint8_t* pf, size_t pf_step, __m512* HWY_RESTRICT sums) {
  constexpr int kBytes = vnni::BlockBytes(K), kH = vnni::CodeOffset(K);
  constexpr int kChunks = vnni::Chunks(K), kAcc = vnni::Accumulators(K);
  for (int r = 0; r < MR; ++r) sums[r] = _mm512_setzero_ps();
  const uint8_t* base = rows(0);
  int64_t bi = 0;
  if constexpr (WindowPath(K)) {
    constexpr int kDw = kBytes / 4;  // dwords per block: header, then codes
    for (; bi + 4 <= nblk; bi += 4) {
      for (size_t q = 0; q < 4 * pf_step; q += 64) _mm_prefetch(reinterpret_cast<const char*>(pf + bi * pf_step + q), _MM_HINT_T1);
      __m512i acc[MR][kAcc];
      __m512i h = _mm512_setzero_si512();
#pragma GCC unroll 16
      for (int q = 0; q < kDw; ++q) {  // the window's 4·kDw dwords, 16 bytes at a time
        __m512i D[4];
        LoadTransposed(rows, static_cast<size_t>(bi) * kBytes + 16 * q, D);
#pragma GCC unroll 4
        for (int e = 0; e < 4; ++e) {
          const int d = 4 * q + e, j = d / kDw, role = d % kDw;
          if (role == 0) {
            h = D[e];
            for (int r = 0; r < MR; ++r) {
              for (int s = 0; s < kAcc; ++s) acc[r][s] = _mm512_setzero_si512();
            }
            continue;
          }
          AddCodes<K, MR>(D[e], (role - 1) / 4, (role - 1) % 4, a, bi + j, acc);
          if (role == kDw - 1) FinishGroup<K, MR>(h, acc, a, bi + j, nb, sums);
        }
      }
    }
  }
  if constexpr (K == vnni::kStretch64) {
    // 18-byte blocks: eight are 144 bytes = 9 chunks = 36 words. Pair i
    // (blocks 2i, 2i+1) is words 9i..9i+8: block 2i's scale is the low half of
    // word 9i and its codes start two bytes in (each code word is joined from
    // two words by vpshrdd); block 2i+1's scale is the high half of word 9i+4
    // and its codes are words 9i+5..9i+8.
    for (; bi + 8 <= nblk; bi += 8) {
      for (size_t q = 0; q < 8 * pf_step; q += 64) _mm_prefetch(reinterpret_cast<const char*>(pf + bi * pf_step + q), _MM_HINT_T1);
      const size_t off = static_cast<size_t>(bi) * kBytes;
      __m512i D[36];
      LoadTransposed(rows, off, D);
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        LoadTransposed(rows, off + 16 * (2 * i + 1), D + 4 * (2 * i + 1));
        LoadTransposed(rows, off + 16 * (2 * i + 2), D + 4 * (2 * i + 2));
        for (int half = 0; half < 2; ++half) {
          __m512i acc[MR][kAcc];
          for (int r = 0; r < MR; ++r) {
            for (int s = 0; s < kAcc; ++s) acc[r][s] = _mm512_setzero_si512();
          }
          const int w0 = 9 * i + 4 * half;  // the word holding the scale
#pragma GCC unroll 4
          for (int t = 0; t < 4; ++t) {
            const __m512i codes = half == 0 ? _mm512_shrdi_epi32(D[w0 + t], D[w0 + t + 1], 16) : D[w0 + 1 + t];
            AddCodes<K, MR>(codes, 0, t, a, bi + 2 * i + half, acc);
          }
          const __m512i h = half == 0 ? D[w0] : _mm512_srli_epi32(D[w0], 16);
          FinishGroup<K, MR>(h, acc, a, bi + 2 * i + half, nb, sums);
        }
      }
    }
  }
  for (; bi < nblk; ++bi) {
    const size_t off = static_cast<size_t>(bi) * kBytes;
    for (size_t q = 0; q < pf_step; q += 64) _mm_prefetch(reinterpret_cast<const char*>(pf + bi * pf_step + q), _MM_HINT_T1);
    __m512i acc[MR][kAcc];
    for (int r = 0; r < MR; ++r) {
      for (int s = 0; s < kAcc; ++s) acc[r][s] = _mm512_setzero_si512();
    }
#pragma GCC unroll 4
    for (int c = 0; c < kChunks; ++c) {
      __m512i W[4];
      LoadTransposed(rows, off + kH + 16 * c, W);
#pragma GCC unroll 4
      for (int t = 0; t < 4; ++t) AddCodes<K, MR>(W[t], c, t, a, bi, acc);
    }
    // Group grids of the 16 rows (one 32-bit gather per header word).
    const uint8_t* hb = base + off;
    if constexpr (vnni::GroupsPerBlock(K) == 1) {
      FinishGroup<K, MR>(_mm512_i32gather_epi32(vidx, hb, 1), acc, a, bi, nb, sums);
    } else {
      // Super-block [f16 d][f16 m0][f16 dm][sm bytes]: group j's grid is
      // scale = d · (sm_j & 15), offset = m0 + dm · (sm_j >> 4) (DqGroupAt).
      // Its first 16 bytes are transposed like the codes (four gathers per
      // super-block cost more): H[0] = d | m0, H[1] = dm | sm0 | sm1,
      // H[2] = sm2..sm5, H[3] = sm6 | sm7 | codes.
      (void)hb;
      __m512i H[4];
      LoadTransposed(rows, off, H);
      const __m512 dd = HalvesLow(H[0]), m0 = HalvesHigh(H[0]), dm = HalvesLow(H[1]);
      constexpr int kGroups = vnni::GroupsPerBlock(K);
      const __m512i lo4 = _mm512_set1_epi32(15);
#pragma GCC unroll 8
      for (int j = 0; j < kGroups; ++j) {
        const int64_t G = bi * kGroups + j;
        if (G >= ng) break;
        const int byte = 6 + j;  // sm_j within the header
        const __m512i sm = _mm512_srli_epi32(H[byte / 4], 8 * (byte % 4));
        const __m512 scale = _mm512_mul_ps(dd, _mm512_cvtepi32_ps(_mm512_and_si512(sm, lo4)));
        const __m512 offset =
            _mm512_add_ps(m0, _mm512_mul_ps(dm, _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(sm, 4), lo4))));
        for (int r = 0; r < MR; ++r) {
          if constexpr (kGroups == 8) {  // group j of 32: plane j/2, half j%2 = slot j, one block
            const __m512i isum = _mm512_srai_epi32(acc[r][j], 2 * (j / 2));
            sums[r] = GroupTerm<1>(&isum, a[r].d, G, nb, scale, offset, a[r].sxg[G], sums[r]);
          } else {  // group j of 64: plane j, blocks (slots) 2j and 2j + 1
            const __m512i isum[2] = {_mm512_srai_epi32(acc[r][2 * j], 2 * j), _mm512_srai_epi32(acc[r][2 * j + 1], 2 * j)};
            sums[r] = GroupTerm<2>(isum, a[r].d, 2 * G, nb, scale, offset, a[r].sxg[G], sums[r]);
          }
        }
      }
    }
  }
}

// One tile (16 output rows at `rows`) for the mb x rows, two at a time; bias
// added and the valid lanes stored.
template <int K, class Rows>
BL_VNNI_TARGET void RunTile(const Rows& rows, __m512i vidx, int valid, const ARow* a, int64_t mb, int64_t n,
                            int64_t nblk, int64_t ng, int64_t nb, const uint8_t* pf, size_t step, const float* bias,
                            int64_t o0, float* y) {
  const __mmask16 lanes = static_cast<__mmask16>((1u << valid) - 1);
  for (int64_t r = 0; r < mb;) {
    __m512 sums[2];
    const int mr = mb - r >= 2 ? 2 : 1;
    if (mr == 2) {
      Tile<K, 2>(rows, vidx, nblk, ng, nb, a + r, pf, r == 0 ? step : 0, sums);
    } else {
      Tile<K, 1>(rows, vidx, nblk, ng, nb, a + r, pf, r == 0 ? step : 0, sums);
    }
    for (int i = 0; i < mr; ++i) {
      __m512 s = sums[i];
      if (bias) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(lanes, bias + o0));
      _mm512_mask_storeu_ps(y + (r + i) * n + o0, lanes, s);
    }
    r += mr;
  }
}

// Output rows [16·t0, 16·t1) of an x block of mb rows.
template <int K>
BL_VNNI_TARGET void RunTiles(const ARow* a, int64_t mb, const uint8_t* w, size_t row_bytes, int64_t n, int64_t nblk,
                             int64_t ng, int64_t nb, const float* bias, float* y, int64_t t0, int64_t t1) {
  const size_t tile_bytes = 16 * row_bytes;
  // Prefetch the next tile while this one runs: its bytes spread over the blocks.
  const size_t pf_step = (tile_bytes / static_cast<size_t>(nblk) + 63) / 64 * 64;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t o0 = 16 * t;
    const int valid = static_cast<int>(std::min<int64_t>(16, n - o0));
    const uint8_t* base = w + o0 * row_bytes;
    const uint8_t* pf = t + 1 < t1 ? base + tile_bytes : base;
    const size_t step = t + 1 < t1 ? pf_step : 0;
    alignas(64) int32_t idx[16];
    for (int i = 0; i < 16; ++i) idx[i] = static_cast<int32_t>(std::min(i, valid - 1) * row_bytes);
    const __m512i vidx = _mm512_load_si512(idx);
    if (valid == 16) {
      RunTile<K>(StrideRows{base, row_bytes}, vidx, valid, a, mb, n, nblk, ng, nb, pf, step, bias, o0, y);
    } else {
      RunTile<K>(ClampRows{base, row_bytes, valid - 1}, vidx, valid, a, mb, n, nblk, ng, nb, pf, step, bias, o0, y);
    }
  }
}

#if !defined(__clang__)
#pragma GCC pop_options
#endif
#undef BL_VNNI_TARGET
#endif  // HWY_TARGET == HWY_AVX3_DL

bool VnniImplAvailable() { return HWY_TARGET == HWY_AVX3_DL; }

// Returns false on targets without the kernel.
bool QMatMulVnniImpl(const float* x, int64_t m, int kind, const uint8_t* w, int64_t n, int64_t k,
                     int64_t ng, size_t row_bytes, const float* bias, float* y) {
#if HWY_TARGET == HWY_AVX3_DL
  vnni::Scratch s;
  const int bw = kind == vnni::kAsym4g32 ? 32 : kind == vnni::kAsym128 ? 128 : kind == vnni::kDQ32 || kind == vnni::kDQ64 ? 256 : 64;
  const int64_t g = kind == vnni::kAsym128 ? 128 : kind == vnni::kDQ32 || kind == vnni::kAsym4g32 ? 32 : 64;
  const int64_t nblk = (k + bw - 1) / bw, kq = nblk * bw;
  const int64_t nbq = kq / kA8Block, nb = (k + kA8Block - 1) / kA8Block, bpg = g / kA8Block;
  const int64_t rows_per_block = std::max<int64_t>(1, std::min<int64_t>(8, (kA8MaxK + vnni::Scratch::kPad) / kq));
  const int64_t tiles = (n + 15) / 16;
  vnni::ARow arows[8];
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
      arows[r] = {xq, d, sxg};
    }
    float* yb = y + r0 * n;
    auto tiles_fn = [&](size_t begin, size_t end, size_t /*worker*/) {
      const int64_t t0 = static_cast<int64_t>(begin), t1 = static_cast<int64_t>(end);
      switch (kind) {
        case vnni::kAsym64: return RunTiles<vnni::kAsym64>(arows, mb, w, row_bytes, n, nblk, ng, nb, bias, yb, t0, t1);
        case vnni::kAsym128: return RunTiles<vnni::kAsym128>(arows, mb, w, row_bytes, n, nblk, ng, nb, bias, yb, t0, t1);
        case vnni::kStretch64: return RunTiles<vnni::kStretch64>(arows, mb, w, row_bytes, n, nblk, ng, nb, bias, yb, t0, t1);
        case vnni::kDQ32: return RunTiles<vnni::kDQ32>(arows, mb, w, row_bytes, n, nblk, ng, nb, bias, yb, t0, t1);
        case vnni::kDQ64: return RunTiles<vnni::kDQ64>(arows, mb, w, row_bytes, n, nblk, ng, nb, bias, yb, t0, t1);
        case vnni::kAsym4g32: return RunTiles<vnni::kAsym4g32>(arows, mb, w, row_bytes, n, nblk, ng, nb, bias, yb, t0, t1);
        case vnni::kAsym4g64: return RunTiles<vnni::kAsym4g64>(arows, mb, w, row_bytes, n, nblk, ng, nb, bias, yb, t0, t1);
        default: return;
      }
    };
    ParallelFor(static_cast<size_t>(tiles), 1, tiles_fn);
  }
  return true;
#else
  (void)x, (void)m, (void)kind, (void)w, (void)n, (void)k, (void)ng, (void)row_bytes, (void)bias, (void)y;
  return false;
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace bitlens::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitlens::kernels {

HWY_EXPORT(VnniImplAvailable);
HWY_EXPORT(QMatMulVnniImpl);

namespace {
// The kernel's kind of f, from the table entry's properties; kNone otherwise.
vnni::Kind KindOf(const quant::FormatInfo& f) {
  using quant::ScaleEncoding;
  const int g = f.group_size;
  if (f.row_header_bytes != 0) return vnni::kNone;
  if (f.bits == 4 && f.encoding == ScaleEncoding::kF16ScaleMin && f.block_weights == g && f.block_bytes == 4 + g / 2) {
    if (g == 32) return vnni::kAsym4g32;
    if (g == 64) return vnni::kAsym4g64;
  }
  if (f.bits != 2) return vnni::kNone;
  if (f.encoding == ScaleEncoding::kF16ScaleMin && f.block_weights == g && f.block_bytes == 4 + g / 4) {
    if (g == 64) return vnni::kAsym64;
    if (g == 128) return vnni::kAsym128;
  }
  if (f.encoding == ScaleEncoding::kF16ScaleStretched && g == 64 && f.block_weights == g && f.block_bytes == 2 + g / 4) {
    return vnni::kStretch64;
  }
  if (f.encoding == ScaleEncoding::kDoubleQuantScaleMin && f.block_weights == quant::kDqBlock &&
      f.block_bytes == quant::kDqHeaderBytes + quant::kDqBlock / g + quant::kDqBlock / 4) {
    if (g == 32) return vnni::kDQ32;
    if (g == 64) return vnni::kDQ64;
  }
  return vnni::kNone;
}
}  // namespace

bool VnniSupports(const quant::FormatInfo& f, int64_t k) {
  return KindOf(f) != vnni::kNone && k > 0 && k <= kA8MaxK;
}

bool VnniAvailable() { return HWY_DYNAMIC_DISPATCH(VnniImplAvailable)(); }

bool QMatMulVnni(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                 int64_t k, const float* bias, float* y) {
  if (!VnniSupports(f, k) || !VnniAvailable()) return false;
  if (m <= 0 || n <= 0) return true;
  return HWY_DYNAMIC_DISPATCH(QMatMulVnniImpl)(x, m, static_cast<int>(KindOf(f)), w, n, k, quant::NumGroups(f, k),
                                               quant::RowBytes(f, k), bias, y);
}

}  // namespace bitlens::kernels
#endif  // HWY_ONCE
