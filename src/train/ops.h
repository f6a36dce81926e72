// train/ops: forward/backward pairs of every op the supported model families
// are trained with, on plain fp32 arrays (row-major, shapes in the comments).
// Conventions, shared by every pair:
//   - Forward writes its outputs (never accumulates) and may save what the
//     backward needs (mean/rstd, attention probabilities) in caller buffers.
//   - Backward ACCUMULATES (+=) into every gradient it is given, inputs and
//     parameters alike, so a tensor used twice (tied weights, residuals) and
//     gradient accumulation over micro-batches need no extra code. A null
//     gradient pointer means "not needed" and is skipped.
//   - Nothing allocates except where a comment says so; large products go to
//     OpenBLAS, the rest splits rows over base/thread_pool.
// Every backward is checked against central finite differences in
// tests/unit/train_ops*_test.cpp.
#pragma once

#include <cstdint>

#include "kernels/ops.h"  // kernels::Activation

namespace bitlens::train {

// ---- linear:  y[m, n] = x[m, k] · w[n, k]^T + b[n]        (b may be null)
void LinearForward(const float* x, const float* w, const float* b, int64_t m, int64_t k, int64_t n, float* y);
// dx[m, k] += dy · w;   dw[n, k] += dy^T · x;   db[n] += Σ_rows dy
void LinearBackward(const float* dy, const float* x, const float* w, int64_t m, int64_t k, int64_t n, float* dx,
                    float* dw, float* db);

// ---- embedding:  out[t, dim] = table[ids[t], :]
void EmbeddingForward(const int32_t* ids, int64_t t, const float* table, int64_t dim, float* out);
// dtable[ids[t], :] += dout[t, :]
void EmbeddingBackward(const int32_t* ids, int64_t t, const float* dout, int64_t dim, float* dtable);

// ---- LayerNorm (torch):  y = (x - mean) * rstd * w + b, rows of x[rows, dim].
// mean[rows], rstd[rows] are saved for the backward.
void LayerNormForward(const float* x, const float* w, const float* b, int64_t rows, int64_t dim, float eps, float* y,
                      float* mean, float* rstd);
void LayerNormBackward(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                       int64_t rows, int64_t dim, float* dx, float* dw, float* db);

// ---- RMSNorm (Llama):  y = x * rstd * w,  rstd = 1 / sqrt(mean(x²) + eps); rstd[rows] saved.
void RmsNormForward(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y, float* rstd);
void RmsNormBackward(const float* dy, const float* x, const float* w, const float* rstd, int64_t rows, int64_t dim,
                     float* dx, float* dw);

// ---- elementwise activation y[n] = act(x[n]) (kSilu, kGelu, kGeluTanh, kQuickGelu, kRelu)
void ActivationForward(kernels::Activation act, const float* x, int64_t n, float* y);
// dx += act'(x) · dy
void ActivationBackward(kernels::Activation act, const float* x, const float* dy, int64_t n, float* dx);

// ---- gated MLP activation:  out[n] = act(gate[n]) · up[n]   (SwiGLU with kSilu)
void GatedForward(kernels::Activation act, const float* gate, const float* up, int64_t n, float* out);
void GatedBackward(kernels::Activation act, const float* gate, const float* up, const float* dout, int64_t n,
                   float* dgate, float* dup);

// ---- rotary embedding, HF rotate_half layout, partial rotary (first rotary_dim dims of each head):
// x, y [t, heads, head_dim]; cos, sin [t, rotary_dim / 2] for the t positions (model/rope.h tables).
void RopeForward(const float* x, int64_t t, int64_t heads, int64_t head_dim, int64_t rotary_dim, const float* cos,
                 const float* sin, float* y);
// dx += R^T · dy (the rotation's transpose; dims past rotary_dim pass dy through)
void RopeBackward(const float* dy, int64_t t, int64_t heads, int64_t head_dim, int64_t rotary_dim, const float* cos,
                  const float* sin, float* dx);

// ---- multi-head attention with grouped-query heads over ONE sequence of t tokens:
//   q [t, n_heads, head_dim], k/v [t, n_kv_heads, head_dim] -> out [t, n_heads, head_dim]
// query head h reads kv head h / (n_heads / n_kv_heads); causal: token i sees j <= i.
// probs [n_heads, t, t] receives the softmax (zeros above the diagonal when causal) for the backward.
void AttentionForward(const float* q, const float* k, const float* v, int64_t t, int64_t n_heads,
                      int64_t n_kv_heads, int64_t head_dim, bool causal, float scale, float* probs, float* out);
// dq/dk/dv (shapes of q/k/v) accumulate. scratch: at least NumThreads() * t floats.
void AttentionBackward(const float* dout, const float* q, const float* k, const float* v, const float* probs,
                       int64_t t, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, bool causal, float scale,
                       float* scratch, float* dq, float* dk, float* dv);

// ---- ViT patch embedding (Conv2d, kernel = stride = patch, no padding):
//   pixels [3, h, w], weight [dim, 3, patch, patch] (torch layout), bias [dim] or null
//   out [(h / patch) · (w / patch), dim], patches in row-major order.
// cols [(h/patch)·(w/patch), 3·patch·patch] is the caller's im2col buffer, kept for the backward.
void PatchEmbedForward(const float* pixels, int64_t h, int64_t w, int64_t patch, const float* weight,
                       const float* bias, int64_t dim, float* cols, float* out);
// dweight += dout^T · cols; dbias += Σ dout (no gradient for pixels)
void PatchEmbedBackward(const float* dout, const float* cols, int64_t num_patches, int64_t patch, int64_t dim,
                        float* dweight, float* dbias);

// ---- softmax cross-entropy over logits [t, v] with integer targets [t];
// a target < 0 is ignored (HF's -100). Returns Σ of the per-token losses
// (natural log) and, when dlogits is non-null, dlogits += scale · (softmax − onehot)
// on the counted rows. `scale` is usually 1 / (number of counted tokens).
double CrossEntropyForwardBackward(const float* logits, const int32_t* targets, int64_t t, int64_t v, float scale,
                                   float* dlogits);

// ---- distillation: Σ_rows KL(softmax(teacher/τ) || softmax(student/τ)) over logits [t, v];
// rows where mask[row] == 0 are skipped (mask may be null = all rows). When dstudent is
// non-null: dstudent += scale · (softmax(student/τ) − softmax(teacher/τ)) / τ.
double KlDivForwardBackward(const float* student, const float* teacher, const uint8_t* mask, int64_t t, int64_t v,
                            float temperature, float scale, float* dstudent);

// ---- hidden-state matching: returns Σ (a − b)²; da += scale · 2 (a − b) when da is non-null.
double MseForwardBackward(const float* a, const float* b, int64_t n, float scale, float* da);

}  // namespace bitlens::train
