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

// a · b over dim floats.
HWY_INLINE float Dot(DF df, const float* HWY_RESTRICT a, const float* HWY_RESTRICT b, int64_t dim) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t dim_vec = dim - dim % lanes;
  VF acc = hn::Zero(df);
  for (int64_t d = 0; d < dim_vec; d += lanes) acc = hn::MulAdd(hn::LoadU(df, a + d), hn::LoadU(df, b + d), acc);
  float sum = hn::GetLane(hn::SumOfLanes(df, acc));
  for (int64_t d = dim_vec; d < dim; ++d) sum += a[d] * b[d];
  return sum;
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
  float max = -INFINITY;
  for (int64_t j = 0; j < visible; ++j) {
    scores[j] = Dot(df, q, k + j * kv_stride, head_dim) * scale;
    max = std::fmax(max, scores[j]);
  }
  // exp(s - max) over the scores; the ragged tail via a padded stack buffer so
  // every score goes through the same vector exp.
  const int64_t n_vec = visible - visible % lanes;
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
  // out = (sum_j p_j v_j) / sum, accumulated in out (L1-resident).
  std::fill(out, out + head_dim, 0.0f);
  for (int64_t j = 0; j < visible; ++j) {
    const float* vj = v + j * kv_stride;
    const float p = scores[j];
    const VF vp = hn::Set(df, p);
    for (int64_t d = 0; d < dim_vec; d += lanes) {
      hn::StoreU(hn::MulAdd(vp, hn::LoadU(df, vj + d), hn::LoadU(df, out + d)), df, out + d);
    }
    for (int64_t d = dim_vec; d < head_dim; ++d) out[d] += p * vj[d];
  }
  const VF vinv = hn::Set(df, 1.0f / sum);
  for (int64_t d = 0; d < dim_vec; d += lanes) hn::StoreU(hn::Mul(hn::LoadU(df, out + d), vinv), df, out + d);
  for (int64_t d = dim_vec; d < head_dim; ++d) out[d] *= 1.0f / sum;
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
