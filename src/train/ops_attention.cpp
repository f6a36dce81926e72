// train/ops_attention: multi-head attention with grouped-query heads over one
// sequence (causal or bidirectional) and its backward. The per-head products
// go to OpenBLAS; the softmax is the inference kernel's, its backward a plain loop.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base/thread_pool.h"
#include "kernels/ops.h"
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
        // One row at a time: the kernel's vectorized exp, on this worker.
        kernels::Softmax(row, 1, visible);
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
// for any thread count). dS is built for blocks of query rows in a stack
// buffer so the three products stay sgemm; a sequence too long for it falls
// back to one row at a time in the caller's `scratch`.
void AttentionBackward(const float* dout, const float* q, const float* k, const float* v, const float* probs,
                       int64_t t, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, bool causal, float scale,
                       float* scratch, float* dq, float* dk, float* dv) {
  if (t <= 0 || n_heads <= 0) return;
  constexpr int64_t kBlockFloats = 8192;  // 32 KiB of dS per worker on the stack
  constexpr int64_t kMaxBlockRows = 64;
  const int64_t group = n_heads / n_kv_heads;
  const int q_stride = static_cast<int>(n_heads * head_dim);
  const int kv_stride = static_cast<int>(n_kv_heads * head_dim);
  const int n = static_cast<int>(t), d = static_cast<int>(head_dim);
  // Rows per block depend only on t, so the arithmetic does too.
  const bool on_stack = t <= kBlockFloats;
  const int64_t block_rows = on_stack ? std::min<int64_t>(kMaxBlockRows, kBlockFloats / t) : 1;
  auto kv_heads = [&](size_t begin, size_t end, size_t worker) {
    float stack_ds[kBlockFloats];
    float* ds = on_stack ? stack_ds : scratch + worker * t;  // [rows of the block, keys]: dP, then dS
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
        for (int64_t i0 = 0; i0 < t; i0 += block_rows) {
          const int64_t i1 = std::min(t, i0 + block_rows);
          const int rows = static_cast<int>(i1 - i0);
          // Keys any row of the block sees; P is 0 past a row's own last key,
          // so its dS is 0 there too.
          const int keys = static_cast<int>(causal ? i1 : t);
          // dP [rows, keys] = dO_{i0:i1} V_g^T
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, d, 1.0f, doh + i0 * q_stride, q_stride, vg,
                      kv_stride, 0.0f, ds, keys);
          for (int r = 0; r < rows; ++r) {
            const float* pi = p + (i0 + r) * t;
            float* dsr = ds + static_cast<int64_t>(r) * keys;
            double dot = 0.0;
            for (int j = 0; j < keys; ++j) dot += static_cast<double>(pi[j]) * dsr[j];
            const float mean = static_cast<float>(dot);
            for (int j = 0; j < keys; ++j) dsr[j] = pi[j] * (dsr[j] - mean);
          }
          if (dq != nullptr) {
            // dQ_{i0:i1} += scale · dS K_g
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, keys, scale, ds, keys, kg, kv_stride, 1.0f,
                        dq + i0 * q_stride + h * head_dim, q_stride);
          }
          if (dk != nullptr) {
            // dK_g [keys, head_dim] += scale · dS^T Q_{i0:i1}
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, keys, d, rows, scale, ds, keys,
                        q + i0 * q_stride + h * head_dim, q_stride, 1.0f, dk + g * head_dim, kv_stride);
          }
        }
      }
    }
  };
  ParallelFor(static_cast<size_t>(n_kv_heads), 1, kv_heads);
}

}  // namespace bitlens::train
