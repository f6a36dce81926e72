// kernels/attention: multi-head attention with grouped-query heads over a
// K/V history (causal or bidirectional), threaded over blocks of (query, head)
// rows that share a kv head, with f32 accumulation: scores = q·k_j * scale,
// softmax with max subtraction (online, per key block), out = sum_j p_j v_j.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base/thread_pool.h"
#include "kernels/ops.h"

HWY_BEFORE_NAMESPACE();
namespace bitlens::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// scores[j] = q · k_j * scale for keys j in [0, count), four keys per step so
// four independent FMA chains are in flight and q is loaded once per step.
//   q [head_dim]; key j at k + j * stride
HWY_INLINE void Scores(DF df, const float* HWY_RESTRICT q, const float* HWY_RESTRICT k, int64_t stride, int64_t count,
                       int64_t head_dim, float scale, float* HWY_RESTRICT scores) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t dim_vec = head_dim - head_dim % lanes;
  auto finish = [&](VF acc, const float* kj) {
    float sum = hn::GetLane(hn::SumOfLanes(df, acc));
    for (int64_t d = dim_vec; d < head_dim; ++d) sum += q[d] * kj[d];
    return sum * scale;
  };
  int64_t j = 0;
  for (; j + 4 <= count; j += 4) {
    const float* k0 = k + j * stride;
    const float* k1 = k0 + stride;
    const float* k2 = k1 + stride;
    const float* k3 = k2 + stride;
    VF a0 = hn::Zero(df), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t d = 0; d < dim_vec; d += lanes) {
      const VF qv = hn::LoadU(df, q + d);
      a0 = hn::MulAdd(qv, hn::LoadU(df, k0 + d), a0);
      a1 = hn::MulAdd(qv, hn::LoadU(df, k1 + d), a1);
      a2 = hn::MulAdd(qv, hn::LoadU(df, k2 + d), a2);
      a3 = hn::MulAdd(qv, hn::LoadU(df, k3 + d), a3);
    }
    scores[j] = finish(a0, k0);
    scores[j + 1] = finish(a1, k1);
    scores[j + 2] = finish(a2, k2);
    scores[j + 3] = finish(a3, k3);
  }
  for (; j < count; ++j) {
    const float* kj = k + j * stride;
    VF a = hn::Zero(df);
    for (int64_t d = 0; d < dim_vec; d += lanes) a = hn::MulAdd(hn::LoadU(df, q + d), hn::LoadU(df, kj + d), a);
    scores[j] = finish(a, kj);
  }
}

// out[d0 .. d0 + NV*lanes) = sum_j p_j v_j[...] * inv_sum, with the NV output
// vectors held in registers across all keys (no store/load chain through out).
template <int NV>
HWY_INLINE void WeightedValues(DF df, const float* HWY_RESTRICT p, const float* HWY_RESTRICT v, int64_t stride,
                               int64_t count, float inv_sum, float* HWY_RESTRICT out) {
  static_assert(NV >= 1 && NV <= 4, "chunk");
  const size_t lanes = hn::Lanes(df);
  VF o0 = hn::Zero(df), o1 = o0, o2 = o0, o3 = o0;
  for (int64_t j = 0; j < count; ++j) {
    const float* vj = v + j * stride;
    const VF pj = hn::Set(df, p[j]);
    o0 = hn::MulAdd(pj, hn::LoadU(df, vj), o0);
    if constexpr (NV > 1) o1 = hn::MulAdd(pj, hn::LoadU(df, vj + lanes), o1);
    if constexpr (NV > 2) o2 = hn::MulAdd(pj, hn::LoadU(df, vj + 2 * lanes), o2);
    if constexpr (NV > 3) o3 = hn::MulAdd(pj, hn::LoadU(df, vj + 3 * lanes), o3);
  }
  const VF vinv = hn::Set(df, inv_sum);
  hn::StoreU(hn::Mul(o0, vinv), df, out);
  if constexpr (NV > 1) hn::StoreU(hn::Mul(o1, vinv), df, out + lanes);
  if constexpr (NV > 2) hn::StoreU(hn::Mul(o2, vinv), df, out + 2 * lanes);
  if constexpr (NV > 3) hn::StoreU(hn::Mul(o3, vinv), df, out + 3 * lanes);
}

// One query head against keys/values 0..visible-1 of its kv head.
//   q, out [head_dim]; k, v rows at stride kv_stride; scores [visible]
HWY_INLINE void AttendOne(DF df, const float* HWY_RESTRICT q, const float* HWY_RESTRICT k,
                          const float* HWY_RESTRICT v, int64_t kv_stride, int64_t visible, int64_t head_dim,
                          float scale, float* HWY_RESTRICT scores, float* HWY_RESTRICT out) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t dim_vec = head_dim - head_dim % lanes;
  if (visible <= 0) {
    std::fill(out, out + head_dim, 0.0f);
    return;
  }
  Scores(df, q, k, kv_stride, visible, head_dim, scale, scores);
  // The max, vectorized (std::fmax is a libm call here: it honours NaN rules).
  const int64_t n_vec = visible - visible % lanes;
  float max = -INFINITY;
  if (n_vec > 0) {
    VF vmax = hn::LoadU(df, scores);
    for (int64_t j = lanes; j < n_vec; j += lanes) vmax = hn::Max(vmax, hn::LoadU(df, scores + j));
    max = hn::GetLane(hn::MaxOfLanes(df, vmax));
  }
  for (int64_t j = n_vec; j < visible; ++j) max = scores[j] > max ? scores[j] : max;
  // exp(s - max) over the scores; the ragged tail via a padded stack buffer so
  // every score goes through the same vector exp.
  const VF vmax = hn::Set(df, max);
  VF acc = hn::Zero(df);
  for (int64_t j = 0; j < n_vec; j += lanes) {
    const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, scores + j), vmax));
    acc = hn::Add(acc, e);
    hn::StoreU(e, df, scores + j);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, acc));
  if (n_vec < visible) {
    HWY_ALIGN float tail[HWY_MAX_BYTES / sizeof(float)];
    const int64_t rest = visible - n_vec;
    for (int64_t i = 0; i < lanes; ++i) tail[i] = i < rest ? scores[n_vec + i] : max;
    hn::Store(hn::Exp(df, hn::Sub(hn::Load(df, tail), vmax)), df, tail);
    for (int64_t i = 0; i < rest; ++i) {
      scores[n_vec + i] = tail[i];
      sum += tail[i];
    }
  }
  const float inv_sum = 1.0f / sum;
  // out = (sum_j p_j v_j) / sum, in chunks of up to four vectors, then the
  // ragged head_dim tail (e.g. SigLIP's 72 with 16 lanes) one scalar at a time.
  int64_t d = 0;
  for (; d + 4 * lanes <= dim_vec; d += 4 * lanes)
    WeightedValues<4>(df, scores, v + d, kv_stride, visible, inv_sum, out + d);
  switch ((dim_vec - d) / lanes) {
    case 3:
      WeightedValues<3>(df, scores, v + d, kv_stride, visible, inv_sum, out + d);
      break;
    case 2:
      WeightedValues<2>(df, scores, v + d, kv_stride, visible, inv_sum, out + d);
      break;
    case 1:
      WeightedValues<1>(df, scores, v + d, kv_stride, visible, inv_sum, out + d);
      break;
    default:
      break;
  }
  for (d = dim_vec; d < head_dim; ++d) {
    float o = 0.0f;
    for (int64_t j = 0; j < visible; ++j) o += scores[j] * v[j * kv_stride + d];
    out[d] = o * inv_sum;
  }
}

// ---------------------------------------------------------------------------
// Blocked path: up to kRows query rows that share one kv head (the heads of a
// GQA group at decode, consecutive queries at prefill) walk the keys together
// in blocks of kKeyBlock, so each k_j / v_j vector is loaded once per block of
// rows instead of once per row. Softmax is computed online (running max m,
// running sum l, output rescaled by exp(m_old - m_new) when the max grows;
// Milakov & Gimelshein 2018, as in FlashAttention).
//
// Every row's arithmetic is independent of which rows share its block: keys
// a row cannot see get p = 0 (adding 0 * v is exact) and blocks it cannot see
// at all are skipped, so results do not depend on the thread count either.

constexpr int kRows = 4;
constexpr int64_t kKeyBlock = 64;
constexpr int64_t kMaxHeadDim = 512;  // the output rows live on the stack
// Output vectors per pass over a key block: 4 rows × kChunk accumulators,
// plus kChunk value vectors, must fit the register file.
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3) || HWY_ARCH_ARM
constexpr int kChunk = 4;
#else
constexpr int kChunk = 2;
#endif

struct RowBlock {
  int rows = 0;
  const float* q[kRows];
  float* out[kRows];
  int64_t visible[kRows];
};

// o[r][d0 + c*lanes ...] += sum_j p[r][j] * v_j[...] for NV vectors starting at d0.
template <int NV>
HWY_INLINE void AccumulateValues(DF df, int rows, const float (*p)[kKeyBlock], const float* HWY_RESTRICT v,
                                 int64_t stride, int64_t count, int64_t d0, float (*o)[kMaxHeadDim]) {
  const size_t lanes = hn::Lanes(df);
  // Named accumulators (not arrays) so sizeless targets build too.
  VF a00 = hn::LoadU(df, o[0] + d0), a01 = a00, a02 = a00, a03 = a00;
  VF a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  VF a20 = a00, a21 = a00, a22 = a00, a23 = a00;
  VF a30 = a00, a31 = a00, a32 = a00, a33 = a00;
  auto load = [&](int r, int c) { return hn::LoadU(df, o[r] + d0 + c * lanes); };
  if constexpr (NV > 1) a01 = load(0, 1);
  if constexpr (NV > 2) a02 = load(0, 2);
  if constexpr (NV > 3) a03 = load(0, 3);
  if (rows > 1) {
    a10 = load(1, 0);
    if constexpr (NV > 1) a11 = load(1, 1);
    if constexpr (NV > 2) a12 = load(1, 2);
    if constexpr (NV > 3) a13 = load(1, 3);
  }
  if (rows > 2) {
    a20 = load(2, 0);
    if constexpr (NV > 1) a21 = load(2, 1);
    if constexpr (NV > 2) a22 = load(2, 2);
    if constexpr (NV > 3) a23 = load(2, 3);
  }
  if (rows > 3) {
    a30 = load(3, 0);
    if constexpr (NV > 1) a31 = load(3, 1);
    if constexpr (NV > 2) a32 = load(3, 2);
    if constexpr (NV > 3) a33 = load(3, 3);
  }
  for (int64_t j = 0; j < count; ++j) {
    const float* vj = v + j * stride + d0;
    const VF v0 = hn::LoadU(df, vj);
    VF v1, v2, v3;
    if constexpr (NV > 1) v1 = hn::LoadU(df, vj + lanes);
    if constexpr (NV > 2) v2 = hn::LoadU(df, vj + 2 * lanes);
    if constexpr (NV > 3) v3 = hn::LoadU(df, vj + 3 * lanes);
    {
      const VF pj = hn::Set(df, p[0][j]);
      a00 = hn::MulAdd(pj, v0, a00);
      if constexpr (NV > 1) a01 = hn::MulAdd(pj, v1, a01);
      if constexpr (NV > 2) a02 = hn::MulAdd(pj, v2, a02);
      if constexpr (NV > 3) a03 = hn::MulAdd(pj, v3, a03);
    }
    if (rows > 1) {
      const VF pj = hn::Set(df, p[1][j]);
      a10 = hn::MulAdd(pj, v0, a10);
      if constexpr (NV > 1) a11 = hn::MulAdd(pj, v1, a11);
      if constexpr (NV > 2) a12 = hn::MulAdd(pj, v2, a12);
      if constexpr (NV > 3) a13 = hn::MulAdd(pj, v3, a13);
    }
    if (rows > 2) {
      const VF pj = hn::Set(df, p[2][j]);
      a20 = hn::MulAdd(pj, v0, a20);
      if constexpr (NV > 1) a21 = hn::MulAdd(pj, v1, a21);
      if constexpr (NV > 2) a22 = hn::MulAdd(pj, v2, a22);
      if constexpr (NV > 3) a23 = hn::MulAdd(pj, v3, a23);
    }
    if (rows > 3) {
      const VF pj = hn::Set(df, p[3][j]);
      a30 = hn::MulAdd(pj, v0, a30);
      if constexpr (NV > 1) a31 = hn::MulAdd(pj, v1, a31);
      if constexpr (NV > 2) a32 = hn::MulAdd(pj, v2, a32);
      if constexpr (NV > 3) a33 = hn::MulAdd(pj, v3, a33);
    }
  }
  auto store = [&](VF a, int r, int c) { hn::StoreU(a, df, o[r] + d0 + c * lanes); };
  store(a00, 0, 0);
  if constexpr (NV > 1) store(a01, 0, 1);
  if constexpr (NV > 2) store(a02, 0, 2);
  if constexpr (NV > 3) store(a03, 0, 3);
  if (rows > 1) {
    store(a10, 1, 0);
    if constexpr (NV > 1) store(a11, 1, 1);
    if constexpr (NV > 2) store(a12, 1, 2);
    if constexpr (NV > 3) store(a13, 1, 3);
  }
  if (rows > 2) {
    store(a20, 2, 0);
    if constexpr (NV > 1) store(a21, 2, 1);
    if constexpr (NV > 2) store(a22, 2, 2);
    if constexpr (NV > 3) store(a23, 2, 3);
  }
  if (rows > 3) {
    store(a30, 3, 0);
    if constexpr (NV > 1) store(a31, 3, 1);
    if constexpr (NV > 2) store(a32, 3, 2);
    if constexpr (NV > 3) store(a33, 3, 3);
  }
}

// p[r][j] = q_r · k_j * scale for the rows of a block and keys j in
// [0, count): one pass over the keys, each k_j vector loaded once for all
// rows. Per row, the operations are exactly those of Scores(), so a row's
// scores do not depend on which rows share its block. q rows come from the
// contiguous stack copy `qb`: the rows of one head sit n_heads * head_dim
// floats apart in q (4 KiB for 16 heads of 64), which would alias in L1.
HWY_INLINE void ScoresRows(DF df, int rows, const float (*qb)[kMaxHeadDim], const float* HWY_RESTRICT k,
                           int64_t stride, int64_t count, int64_t head_dim, float scale, float (*p)[kKeyBlock]) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t dim_vec = head_dim - head_dim % lanes;
  auto finish = [&](VF acc, int r, const float* kj) {
    float sum = hn::GetLane(hn::SumOfLanes(df, acc));
    for (int64_t d = dim_vec; d < head_dim; ++d) sum += qb[r][d] * kj[d];
    return sum * scale;
  };
  for (int64_t j = 0; j < count; ++j) {
    const float* kj = k + j * stride;
    VF a0 = hn::Zero(df), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t d = 0; d < dim_vec; d += lanes) {
      const VF kv = hn::LoadU(df, kj + d);
      a0 = hn::MulAdd(hn::Load(df, qb[0] + d), kv, a0);
      if (rows > 1) a1 = hn::MulAdd(hn::Load(df, qb[1] + d), kv, a1);
      if (rows > 2) a2 = hn::MulAdd(hn::Load(df, qb[2] + d), kv, a2);
      if (rows > 3) a3 = hn::MulAdd(hn::Load(df, qb[3] + d), kv, a3);
    }
    p[0][j] = finish(a0, 0, kj);
    if (rows > 1) p[1][j] = finish(a1, 1, kj);
    if (rows > 2) p[2][j] = finish(a2, 2, kj);
    if (rows > 3) p[3][j] = finish(a3, 3, kj);
  }
}

// The rows of `b` against keys/values of one kv head (k, v at that head,
// rows at stride `stride`).
void AttendBlock(DF df, const RowBlock& b, const float* HWY_RESTRICT k, const float* HWY_RESTRICT v, int64_t stride,
                 int64_t head_dim, float scale) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t dim_vec = head_dim - head_dim % lanes;
  HWY_ALIGN float o[kRows][kMaxHeadDim];
  HWY_ALIGN float qb[kRows][kMaxHeadDim];
  HWY_ALIGN float p[kRows][kKeyBlock];
  HWY_ALIGN float tail[HWY_MAX_BYTES / sizeof(float)];
  float m[kRows], l[kRows];
  int64_t max_visible = 0;
  for (int r = 0; r < b.rows; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
    std::fill(o[r], o[r] + head_dim, 0.0f);
    std::copy(b.q[r], b.q[r] + head_dim, qb[r]);
    max_visible = std::max(max_visible, b.visible[r]);
  }
  for (int64_t j0 = 0; j0 < max_visible; j0 += kKeyBlock) {
    const int64_t count = std::min(kKeyBlock, max_visible - j0);
    const float* kb = k + j0 * stride;
    const float* vb = v + j0 * stride;
    // Scores of every row for the keys of this block (keys beyond a row's
    // visible range are computed but not used).
    ScoresRows(df, b.rows, qb, kb, stride, count, head_dim, scale, p);
    int active = 0;  // rows that see at least one key of this block
    for (int r = 0; r < b.rows; ++r) {
      const int64_t valid = std::clamp<int64_t>(b.visible[r] - j0, 0, count);
      if (valid == 0) {
        std::fill(p[r], p[r] + count, 0.0f);
        continue;
      }
      ++active;
      const int64_t n_vec = valid - valid % lanes;
      float block_max = -INFINITY;
      if (n_vec > 0) {
        VF vmax = hn::LoadU(df, p[r]);
        for (int64_t j = lanes; j < n_vec; j += lanes) vmax = hn::Max(vmax, hn::LoadU(df, p[r] + j));
        block_max = hn::GetLane(hn::MaxOfLanes(df, vmax));
      }
      for (int64_t j = n_vec; j < valid; ++j) block_max = p[r][j] > block_max ? p[r][j] : block_max;
      const float m_new = block_max > m[r] ? block_max : m[r];
      const VF vm = hn::Set(df, m_new);
      VF acc = hn::Zero(df);
      for (int64_t j = 0; j < n_vec; j += lanes) {
        const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, p[r] + j), vm));
        acc = hn::Add(acc, e);
        hn::StoreU(e, df, p[r] + j);
      }
      float sum = hn::GetLane(hn::SumOfLanes(df, acc));
      if (n_vec < valid) {
        const int64_t rest = valid - n_vec;
        for (int64_t i = 0; i < lanes; ++i) tail[i] = i < rest ? p[r][n_vec + i] : m_new;
        hn::Store(hn::Exp(df, hn::Sub(hn::Load(df, tail), vm)), df, tail);
        for (int64_t i = 0; i < rest; ++i) {
          p[r][n_vec + i] = tail[i];
          sum += tail[i];
        }
      }
      std::fill(p[r] + valid, p[r] + count, 0.0f);
      if (m_new > m[r] && l[r] > 0.0f) {
        // The max grew: rescale what was accumulated under the old max.
        const float alpha = std::exp(m[r] - m_new);
        l[r] *= alpha;
        const VF va = hn::Set(df, alpha);
        for (int64_t d = 0; d < dim_vec; d += lanes) hn::StoreU(hn::Mul(hn::LoadU(df, o[r] + d), va), df, o[r] + d);
        for (int64_t d = dim_vec; d < head_dim; ++d) o[r][d] *= alpha;
      }
      m[r] = m_new;
      l[r] += sum;
    }
    if (active == 0) continue;
    int64_t d = 0;
    for (; d + kChunk * lanes <= dim_vec; d += kChunk * lanes)
      AccumulateValues<kChunk>(df, b.rows, p, vb, stride, count, d, o);
    for (; d < dim_vec; d += lanes) AccumulateValues<1>(df, b.rows, p, vb, stride, count, d, o);
    for (d = dim_vec; d < head_dim; ++d) {
      for (int r = 0; r < b.rows; ++r) {
        float acc = o[r][d];
        for (int64_t j = 0; j < count; ++j) acc += p[r][j] * vb[j * stride + d];
        o[r][d] = acc;
      }
    }
  }
  for (int r = 0; r < b.rows; ++r) {
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    const VF vinv = hn::Set(df, inv);
    for (int64_t d = 0; d < dim_vec; d += lanes) hn::StoreU(hn::Mul(hn::LoadU(df, o[r] + d), vinv), df, b.out[r] + d);
    for (int64_t d = dim_vec; d < head_dim; ++d) b.out[r][d] = o[r][d] * inv;
  }
}

// q, out [n_q, n_heads, head_dim]; k, v [n_kv, n_kv_heads, head_dim];
// scratch [NumThreads(), n_kv] (used only when head_dim > kMaxHeadDim)
void AttentionHeads(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v, int64_t n_kv,
                    int64_t n_kv_heads, int64_t head_dim, int64_t q_pos0, bool causal, float scale, float* scratch,
                    float* out) {
  const int64_t group = n_heads / n_kv_heads;
  const int64_t kv_stride = n_kv_heads * head_dim;
  auto visible_of = [&](int64_t i) { return causal ? std::min(n_kv, q_pos0 + i + 1) : n_kv; };
  if (head_dim > kMaxHeadDim) {
    // Pairs are ordered head-major so that with causal prefill each thread's
    // contiguous share mixes short and long queries (balanced static split).
    auto pairs = [&](size_t begin, size_t end, size_t worker) {
      const DF df;
      float* scores = scratch + worker * n_kv;
      for (size_t p = begin; p < end; ++p) {
        const int64_t h = static_cast<int64_t>(p) / n_q, i = static_cast<int64_t>(p) % n_q;
        const int64_t kvh = h / group;
        AttendOne(df, q + (i * n_heads + h) * head_dim, k + kvh * head_dim, v + kvh * head_dim, kv_stride,
                  visible_of(i), head_dim, scale, scores, out + (i * n_heads + h) * head_dim);
      }
    };
    ParallelFor(static_cast<size_t>(n_q * n_heads), 1, pairs);
    return;
  }
  // Rows of one kv head, ordered query-major then head within the group:
  // row t -> query t / group, head kvh * group + t % group. Work units are
  // blocks of kRows rows, kv-head-major (balanced static split under causal).
  const int64_t rows_per_kv = n_q * group;
  const int64_t blocks_per_kv = (rows_per_kv + kRows - 1) / kRows;
  auto units = [&](size_t begin, size_t end, size_t /*worker*/) {
    const DF df;
    for (size_t u = begin; u < end; ++u) {
      const int64_t kvh = static_cast<int64_t>(u) / blocks_per_kv;
      const int64_t t0 = (static_cast<int64_t>(u) % blocks_per_kv) * kRows;
      RowBlock b;
      for (int64_t t = t0; t < std::min(rows_per_kv, t0 + kRows); ++t) {
        const int64_t i = t / group, h = kvh * group + t % group;
        b.q[b.rows] = q + (i * n_heads + h) * head_dim;
        b.out[b.rows] = out + (i * n_heads + h) * head_dim;
        b.visible[b.rows] = visible_of(i);
        ++b.rows;
      }
      AttendBlock(df, b, k + kvh * head_dim, v + kvh * head_dim, kv_stride, head_dim, scale);
    }
  };
  ParallelFor(static_cast<size_t>(n_kv_heads * blocks_per_kv), 1, units);
}

}  // namespace HWY_NAMESPACE
}  // namespace bitlens::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bitlens::kernels {

HWY_EXPORT(AttentionHeads);

void Attention(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v, int64_t n_kv,
               int64_t n_kv_heads, int64_t head_dim, int64_t q_pos0, bool causal, float scale, float* scratch,
               float* out) {
  if (n_q <= 0 || n_heads <= 0) return;
  HWY_DYNAMIC_DISPATCH(AttentionHeads)(q, n_q, n_heads, k, v, n_kv, n_kv_heads, head_dim, q_pos0, causal, scale,
                                       scratch, out);
}

}  // namespace bitlens::kernels
#endif  // HWY_ONCE
