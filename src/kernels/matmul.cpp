// kernels/matmul: y[m, n] = x[m, k] · w[n, k]^T + bias for f32, f16 and bf16
// weights read in place (nn.Linear layout), widened to f32 in registers.
// Decode (m = 1) is a memory-bound GEMV split by output rows over the pool;
// prefill tiles MR x-rows × NR weight rows so each loaded weight vector feeds
// MR multiply-adds, and blocks x so a block of rows stays in cache.
//
// Determinism: every output y[r, o] is computed with the same sequence of
// operations (one vector accumulator over the k-blocks in order, a lane sum,
// the scalar k-tail in order, then the bias) whatever tile or thread it falls
// in, so results do not even depend on the thread count.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/cache_control.h"
#include "hwy/highway.h"

#include <algorithm>
#include <cstdint>

#include "base/f16.h"
#include "base/thread_pool.h"
#include "kernels/ops.h"
#include "kernels/qmatmul.h"

HWY_BEFORE_NAMESPACE();
namespace bitlens::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// One vector of weights starting at p, widened to f32.
HWY_INLINE VF LoadWeights(DF df, const float* HWY_RESTRICT p) { return hn::LoadU(df, p); }
HWY_INLINE VF LoadWeights(DF df, const hwy::bfloat16_t* HWY_RESTRICT p) {
  return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::bfloat16_t, DF>(), p));
}
HWY_INLINE VF LoadWeights(DF df, const hwy::float16_t* HWY_RESTRICT p) {
  return hn::PromoteTo(df, hn::LoadU(hn::Rebind<hwy::float16_t, DF>(), p));
}

HWY_INLINE float WeightScalar(const float* p) { return *p; }
HWY_INLINE float WeightScalar(const hwy::bfloat16_t* p) { return Bf16ToF32(p->bits); }
HWY_INLINE float WeightScalar(const hwy::float16_t* p) {
  uint16_t bits;
  hwy::CopyBytes<2>(p, &bits);
  return F16ToF32(bits);
}

// Finishes one output: lane sum of the accumulator, the k-tail, the bias.
template <class WT>
HWY_INLINE float Finish(DF df, VF acc, const float* HWY_RESTRICT x, const WT* HWY_RESTRICT w, int64_t k_vec,
                        int64_t k, const float* bias, int64_t o) {
  float sum = hn::GetLane(hn::SumOfLanes(df, acc));
  for (int64_t i = k_vec; i < k; ++i) sum += x[i] * WeightScalar(w + i);
  if (bias) sum += bias[o];
  return sum;
}

// A tile: x rows r0..r0+MR (x points at row r0), weight rows o0..o0+NR (w at
// row o0); writes y[r0 + i, o0 + j] (y points at y[r0, o0], row stride n).
// Accumulators are named variables (not arrays) so the code also builds for
// sizeless vector targets (SVE, RVV).
// How far ahead of the current position decode prefetches each weight row
// (prefetching past the end of a row is harmless: prefetches never fault).
constexpr int64_t kPrefetchBytes = 2048;

template <int MR, int NR, class WT>
HWY_INLINE void Tile(const float* HWY_RESTRICT x, const WT* HWY_RESTRICT w, int64_t k, int64_t n,
                     const float* bias, int64_t o0, float* HWY_RESTRICT y) {
  static_assert(MR >= 1 && MR <= 4 && NR >= 1 && NR <= 4, "tile shape");
  const DF df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t k_vec = k - k % lanes;
  constexpr int64_t kPrefetchAhead = kPrefetchBytes / static_cast<int64_t>(sizeof(WT));
  const float* x0 = x;
  const float* x1 = x + (MR > 1 ? k : 0);
  const float* x2 = x + (MR > 2 ? 2 * k : 0);
  const float* x3 = x + (MR > 3 ? 3 * k : 0);
  const WT* w0 = w;
  const WT* w1 = w + (NR > 1 ? k : 0);
  const WT* w2 = w + (NR > 2 ? 2 * k : 0);
  const WT* w3 = w + (NR > 3 ? 3 * k : 0);
  VF a00 = hn::Zero(df), a01 = a00, a02 = a00, a03 = a00;
  VF a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  VF a20 = a00, a21 = a00, a22 = a00, a23 = a00;
  VF a30 = a00, a31 = a00, a32 = a00, a33 = a00;
  for (int64_t i = 0; i < k_vec; i += lanes) {
    if constexpr (MR == 1) {
      // Decode streams NR weight rows from DRAM: ask for them early.
      hwy::Prefetch(w0 + i + kPrefetchAhead);
      if constexpr (NR > 1) hwy::Prefetch(w1 + i + kPrefetchAhead);
      if constexpr (NR > 2) hwy::Prefetch(w2 + i + kPrefetchAhead);
      if constexpr (NR > 3) hwy::Prefetch(w3 + i + kPrefetchAhead);
    }
    const VF v0 = hn::LoadU(df, x0 + i);
    VF v1, v2, v3;
    if constexpr (MR > 1) v1 = hn::LoadU(df, x1 + i);
    if constexpr (MR > 2) v2 = hn::LoadU(df, x2 + i);
    if constexpr (MR > 3) v3 = hn::LoadU(df, x3 + i);
    {
      const VF wv = LoadWeights(df, w0 + i);
      a00 = hn::MulAdd(v0, wv, a00);
      if constexpr (MR > 1) a10 = hn::MulAdd(v1, wv, a10);
      if constexpr (MR > 2) a20 = hn::MulAdd(v2, wv, a20);
      if constexpr (MR > 3) a30 = hn::MulAdd(v3, wv, a30);
    }
    if constexpr (NR > 1) {
      const VF wv = LoadWeights(df, w1 + i);
      a01 = hn::MulAdd(v0, wv, a01);
      if constexpr (MR > 1) a11 = hn::MulAdd(v1, wv, a11);
      if constexpr (MR > 2) a21 = hn::MulAdd(v2, wv, a21);
      if constexpr (MR > 3) a31 = hn::MulAdd(v3, wv, a31);
    }
    if constexpr (NR > 2) {
      const VF wv = LoadWeights(df, w2 + i);
      a02 = hn::MulAdd(v0, wv, a02);
      if constexpr (MR > 1) a12 = hn::MulAdd(v1, wv, a12);
      if constexpr (MR > 2) a22 = hn::MulAdd(v2, wv, a22);
      if constexpr (MR > 3) a32 = hn::MulAdd(v3, wv, a32);
    }
    if constexpr (NR > 3) {
      const VF wv = LoadWeights(df, w3 + i);
      a03 = hn::MulAdd(v0, wv, a03);
      if constexpr (MR > 1) a13 = hn::MulAdd(v1, wv, a13);
      if constexpr (MR > 2) a23 = hn::MulAdd(v2, wv, a23);
      if constexpr (MR > 3) a33 = hn::MulAdd(v3, wv, a33);
    }
  }
  float* y0 = y;
  y0[0] = Finish(df, a00, x0, w0, k_vec, k, bias, o0);
  if constexpr (NR > 1) y0[1] = Finish(df, a01, x0, w1, k_vec, k, bias, o0 + 1);
  if constexpr (NR > 2) y0[2] = Finish(df, a02, x0, w2, k_vec, k, bias, o0 + 2);
  if constexpr (NR > 3) y0[3] = Finish(df, a03, x0, w3, k_vec, k, bias, o0 + 3);
  if constexpr (MR > 1) {
    float* y1 = y + n;
    y1[0] = Finish(df, a10, x1, w0, k_vec, k, bias, o0);
    if constexpr (NR > 1) y1[1] = Finish(df, a11, x1, w1, k_vec, k, bias, o0 + 1);
    if constexpr (NR > 2) y1[2] = Finish(df, a12, x1, w2, k_vec, k, bias, o0 + 2);
    if constexpr (NR > 3) y1[3] = Finish(df, a13, x1, w3, k_vec, k, bias, o0 + 3);
  }
  if constexpr (MR > 2) {
    float* y2 = y + 2 * n;
    y2[0] = Finish(df, a20, x2, w0, k_vec, k, bias, o0);
    if constexpr (NR > 1) y2[1] = Finish(df, a21, x2, w1, k_vec, k, bias, o0 + 1);
    if constexpr (NR > 2) y2[2] = Finish(df, a22, x2, w2, k_vec, k, bias, o0 + 2);
    if constexpr (NR > 3) y2[3] = Finish(df, a23, x2, w3, k_vec, k, bias, o0 + 3);
  }
  if constexpr (MR > 3) {
    float* y3 = y + 3 * n;
    y3[0] = Finish(df, a30, x3, w0, k_vec, k, bias, o0);
    if constexpr (NR > 1) y3[1] = Finish(df, a31, x3, w1, k_vec, k, bias, o0 + 1);
    if constexpr (NR > 2) y3[2] = Finish(df, a32, x3, w2, k_vec, k, bias, o0 + 2);
    if constexpr (NR > 3) y3[3] = Finish(df, a33, x3, w3, k_vec, k, bias, o0 + 3);
  }
}

// Decode: one x row against weight rows [o_begin, o_end), four at a time so
// four weight streams are in flight.
template <class WT>
void GemvRows(const float* x, const WT* w, int64_t k, int64_t n, const float* bias, int64_t o_begin, int64_t o_end,
              float* y) {
  int64_t o = o_begin;
  for (; o + 4 <= o_end; o += 4) Tile<1, 4>(x, w + o * k, k, n, bias, o, y + o);
  for (; o < o_end; ++o) Tile<1, 1>(x, w + o * k, k, n, bias, o, y + o);
}

// The remaining x rows (fewer than 4) of a row block against NR weight rows.
template <int NR, class WT>
HWY_INLINE void TileRowTail(int64_t rows, const float* x, const WT* w, int64_t k, int64_t n, const float* bias,
                            int64_t o, float* y) {
  if (rows == 3) Tile<3, NR>(x, w, k, n, bias, o, y);
  if (rows == 2) Tile<2, NR>(x, w, k, n, bias, o, y);
  if (rows == 1) Tile<1, NR>(x, w, k, n, bias, o, y);
}

// Prefill tile: 4 x rows × kGemmNR weight rows. Targets with 32 vector
// registers (AVX-512, NEON, SVE) hold a 4×4 tile of accumulators plus the
// operands; 16-register targets (AVX2, SSE) use 4×2 to avoid spilling.
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3) || HWY_ARCH_ARM
constexpr int kGemmNR = 4;
#else
constexpr int kGemmNR = 2;
#endif

// Prefill: x rows [0, m) against weight rows [o_begin, o_end). x is taken in
// blocks small enough to stay in L2 while the NR weight rows (in L1) meet
// every row of the block.
template <class WT>
void GemmRows(const float* x, int64_t m, const WT* w, int64_t k, int64_t n, const float* bias, int64_t o_begin,
              int64_t o_end, float* y) {
  constexpr int MR = 4, NR = kGemmNR;
  constexpr int64_t kBlockBytes = 256 * 1024;
  const int64_t block_rows = std::max<int64_t>(MR, std::min<int64_t>(64, kBlockBytes / (4 * std::max<int64_t>(k, 1))) / MR * MR);
  for (int64_t r0 = 0; r0 < m; r0 += block_rows) {
    const int64_t r1 = std::min(m, r0 + block_rows);
    int64_t o = o_begin;
    for (; o + NR <= o_end; o += NR) {
      int64_t r = r0;
      for (; r + MR <= r1; r += MR) Tile<MR, NR>(x + r * k, w + o * k, k, n, bias, o, y + r * n + o);
      TileRowTail<NR>(r1 - r, x + r * k, w + o * k, k, n, bias, o, y + r * n + o);
    }
    for (; o < o_end; ++o) {
      int64_t r = r0;
      for (; r + MR <= r1; r += MR) Tile<MR, 1>(x + r * k, w + o * k, k, n, bias, o, y + r * n + o);
      TileRowTail<1>(r1 - r, x + r * k, w + o * k, k, n, bias, o, y + r * n + o);
    }
  }
}

template <class WT>
void MatMulTyped(const float* x, int64_t m, const WT* w, int64_t n, int64_t k, const float* bias, float* y) {
  // Grain of 16 output rows: chunks stay cache-line friendly in y and the
  // static split gives each thread a contiguous stretch of the weights.
  auto rows = [&](size_t begin, size_t end, size_t /*worker*/) {
    if (m == 1) {
      GemvRows(x, w, k, n, bias, static_cast<int64_t>(begin), static_cast<int64_t>(end), y);
    } else {
      GemmRows(x, m, w, k, n, bias, static_cast<int64_t>(begin), static_cast<int64_t>(end), y);
    }
  };
  ParallelFor(static_cast<size_t>(n), 16, rows);
}

void MatMulDispatch(const float* x, int64_t m, const WeightView& w, const float* bias, float* y) {
  switch (w.dtype) {
    case DType::kF32:
      return MatMulTyped(x, m, static_cast<const float*>(w.data), w.n, w.k, bias, y);
    case DType::kBF16:
      return MatMulTyped(x, m, static_cast<const hwy::bfloat16_t*>(w.data), w.n, w.k, bias, y);
    case DType::kF16:
      return MatMulTyped(x, m, static_cast<const hwy::float16_t*>(w.data), w.n, w.k, bias, y);
    default:
      return MatMulRef(x, m, w, bias, y);  // other dtypes are not matmul weights; the reference writes NaN
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace bitlens::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitlens::kernels {

HWY_EXPORT(MatMulDispatch);

size_t WeightRowBytes(const WeightView& w) {
  if (w.format != nullptr) return quant::RowBytes(*w.format, w.k);
  return static_cast<size_t>(w.k) * DTypeSize(w.dtype);
}

void MatMul(const float* x, int64_t m, const WeightView& w, const float* bias, float* y) {
  if (m <= 0 || w.n <= 0) return;
  if (w.format != nullptr) {
    return QMatMul(x, m, *w.format, static_cast<const uint8_t*>(w.data), w.n, w.k, bias, y);
  }
  HWY_DYNAMIC_DISPATCH(MatMulDispatch)(x, m, w, bias, y);
}

}  // namespace bitlens::kernels
#endif  // HWY_ONCE
