// train/ops_attention: multi-head attention with grouped-query heads over one
// sequence (causal or bidirectional) and its backward. The per-head products
// go to OpenBLAS; the softmax and its backward are plain loops.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base/thread_pool.h"
#include "train/ops.h"

namespace bitlens::train {

// Per query head h (kv head g = h / group), with Q_h [t, head_dim] at stride
// n_heads · head_dim and K_g, V_g [t, head_dim] at stride n_kv_heads · head_dim:
//   P_h = softmax(scale · Q_h K_g^T) (rows masked to j <= i when causal)
//   O_h = P_h V_g
// Heads are independent, so each worker owns whole heads (deterministic).
void AttentionForward(const float* q, const float* k, const float* v, int64_t t, int64_t n_heads,
                      int64_t n_kv_heads, int64_t head_dim, bool causal, float scale, float* probs, float* out) {
  if (t <= 0 || n_heads <= 0) return;
  const int64_t group = n_heads / n_kv_heads;
  const int q_stride = static_cast<int>(n_heads * head_dim);
  const int kv_stride = static_cast<int>(n_kv_heads * head_dim);
  const int n = static_cast<int>(t), d = static_cast<int>(head_dim);
  auto heads = [&](size_t begin, size_t end, size_t /*worker*/) {
    for (size_t hu = begin; hu < end; ++hu) {
      const int64_t h = static_cast<int64_t>(hu), g = h / group;
      float* p = probs + h * t * t;
      // scores [t, t] = scale · Q_h K_g^T (the masked part is overwritten below)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, d, scale, q + h * head_dim, q_stride,
                  k + g * head_dim, kv_stride, 0.0f, p, n);
      for (int64_t i = 0; i < t; ++i) {
        float* row = p + i * t;
        const int64_t visible = causal ? i + 1 : t;
        float max = row[0];
        for (int64_t j = 1; j < visible; ++j) max = std::max(max, row[j]);
        double sum = 0.0;
        for (int64_t j = 0; j < visible; ++j) {
          row[j] = std::exp(row[j] - max);
          sum += row[j];
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t j = 0; j < visible; ++j) row[j] *= inv;
        std::fill(row + visible, row + t, 0.0f);
      }
      // O_h [t, head_dim] = P_h V_g
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, n, 1.0f, p, n, v + g * head_dim, kv_stride, 0.0f,
                  out + h * head_dim, q_stride);
    }
  };
  ParallelFor(static_cast<size_t>(n_heads), 1, heads);
}

// With dP = dO_h V_g^T and dS = P ∘ (dP − rowsum(P ∘ dP)) (softmax backward):
//   dV_g += P_h^T dO_h;   dQ_h += scale · dS K_g;   dK_g += scale · dS^T Q_h.
// The heads of one GQA group all add into the same dK_g/dV_g, so work is split
// by kv head: one worker owns a group's heads, in a fixed order (deterministic
// for any thread count). dS is built one query row at a time in `scratch`.
void AttentionBackward(const float* dout, const float* q, const float* k, const float* v, const float* probs,
                       int64_t t, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, bool causal, float scale,
                       float* scratch, float* dq, float* dk, float* dv) {
  if (t <= 0 || n_heads <= 0) return;
  const int64_t group = n_heads / n_kv_heads;
  const int q_stride = static_cast<int>(n_heads * head_dim);
  const int kv_stride = static_cast<int>(n_kv_heads * head_dim);
  const int n = static_cast<int>(t), d = static_cast<int>(head_dim);
  auto kv_heads = [&](size_t begin, size_t end, size_t worker) {
    float* ds = scratch + worker * t;  // [t]: dP, then dS, of one query row
    for (size_t gu = begin; gu < end; ++gu) {
      const int64_t g = static_cast<int64_t>(gu);
      const float* kg = k + g * head_dim;
      const float* vg = v + g * head_dim;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        const float* p = probs + h * t * t;
        const float* doh = dout + h * head_dim;
        if (dv != nullptr) {
          // dV_g [t, head_dim] += P_h^T dO_h
          cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, d, n, 1.0f, p, n, doh, q_stride, 1.0f,
                      dv + g * head_dim, kv_stride);
        }
        if (dq == nullptr && dk == nullptr) continue;
        for (int64_t i = 0; i < t; ++i) {
          const int visible = static_cast<int>(causal ? i + 1 : t);
          const float* pi = p + i * t;
          const float* do_i = doh + i * q_stride;
          // dP[i, j] = dO_i · v_j for the visible keys
          cblas_sgemv(CblasRowMajor, CblasNoTrans, visible, d, 1.0f, vg, kv_stride, do_i, 1, 0.0f, ds, 1);
          double dot = 0.0;
          for (int j = 0; j < visible; ++j) dot += static_cast<double>(pi[j]) * ds[j];
          const float mean = static_cast<float>(dot);
          for (int j = 0; j < visible; ++j) ds[j] = pi[j] * (ds[j] - mean);
          if (dq != nullptr) {
            // dQ_i += scale · Σ_j dS_ij k_j
            cblas_sgemv(CblasRowMajor, CblasTrans, visible, d, scale, kg, kv_stride, ds, 1, 1.0f,
                        dq + i * q_stride + h * head_dim, 1);
          }
          if (dk != nullptr) {
            // dK_j += scale · dS_ij q_i for the visible keys
            cblas_sger(CblasRowMajor, visible, d, scale, ds, 1, q + i * q_stride + h * head_dim, 1, dk + g * head_dim,
                       kv_stride);
          }
        }
      }
    }
  };
  ParallelFor(static_cast<size_t>(n_kv_heads), 1, kv_heads);
}

}  // namespace bitlens::train
