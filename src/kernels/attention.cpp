// kernels/attention: multi-head attention with grouped-query heads over a
// K/V history (causal or bidirectional), threaded over (head, query) pairs.
// Each pair is computed by one worker in a fixed order with f32 accumulation:
// scores = q·k_j * scale, softmax with max subtraction, out = sum_j p_j v_j.
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

// q, out [n_q, n_heads, head_dim]; k, v [n_kv, n_kv_heads, head_dim];
// scratch [NumThreads(), n_kv]
void AttentionHeads(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v, int64_t n_kv,
                    int64_t n_kv_heads, int64_t head_dim, int64_t q_pos0, bool causal, float scale, float* scratch,
                    float* out) {
  const int64_t group = n_heads / n_kv_heads;
  const int64_t kv_stride = n_kv_heads * head_dim;
  // Pairs are ordered head-major so that with causal prefill each thread's
  // contiguous share mixes short and long queries (balanced static split).
  auto pairs = [&](size_t begin, size_t end, size_t worker) {
    const DF df;
    float* scores = scratch + worker * n_kv;
    for (size_t p = begin; p < end; ++p) {
      const int64_t h = static_cast<int64_t>(p) / n_q, i = static_cast<int64_t>(p) % n_q;
      const int64_t visible = causal ? std::min(n_kv, q_pos0 + i + 1) : n_kv;
      const int64_t kvh = h / group;
      AttendOne(df, q + (i * n_heads + h) * head_dim, k + kvh * head_dim, v + kvh * head_dim, kv_stride, visible,
                head_dim, scale, scores, out + (i * n_heads + h) * head_dim);
    }
  };
  ParallelFor(static_cast<size_t>(n_q * n_heads), 1, pairs);
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
