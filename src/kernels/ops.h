// kernels/ops: the float kernels every model family is built from. Each op
// has a scalar reference (`*Ref`, the truth) and a fast path (Highway, runtime
// dispatch) tested against it. Kernels never allocate and never fail: callers
// validate shapes. Multithreaded ops split work by output rows through
// base/thread_pool, so results are deterministic for a fixed thread count.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace bitlens::quant {
struct FormatInfo;
}  // namespace bitlens::quant

namespace bitlens::kernels {

// A weight matrix in the layout of torch.nn.Linear: [n, k] row-major, one
// row per output feature. dtype is F32, F16 or BF16; data is used in place.
// With `format` set, data holds n packed rows of quant::RowBytes(*format, k)
// bytes instead (dtype U8) and MatMul runs kernels/qmatmul.
struct WeightView {
  DType dtype = DType::kF32;
  const void* data = nullptr;
  int64_t n = 0;  // output features (rows)
  int64_t k = 0;  // input features (columns)
  const quant::FormatInfo* format = nullptr;
};

// Bytes from one row of w to the next.
size_t WeightRowBytes(const WeightView& w);

// y[m, n] = x[m, k] · w[n, k]^T + bias[n]   (bias may be null)
void MatMul(const float* x, int64_t m, const WeightView& w, const float* bias, float* y);
void MatMulRef(const float* x, int64_t m, const WeightView& w, const float* bias, float* y);

// y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight     (Llama RMSNorm)
void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y);
void RmsNormRef(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y);

// y[r, :] = (x - mean) / sqrt(var + eps) * weight + bias        (torch LayerNorm)
void LayerNorm(const float* x, const float* weight, const float* bias, int64_t rows, int64_t dim, float eps, float* y);
void LayerNormRef(const float* x, const float* weight, const float* bias, int64_t rows, int64_t dim, float eps, float* y);

// In-place numerically stable softmax over each row of x[rows, n].
void Softmax(float* x, int64_t rows, int64_t n);
void SoftmaxRef(float* x, int64_t rows, int64_t n);

enum class Activation { kSilu, kGelu, kGeluTanh, kQuickGelu, kRelu };
// In-place elementwise activation. kGelu is the exact erf form; kGeluTanh is
// gelu_pytorch_tanh; kQuickGelu is x * sigmoid(1.702 x) (CLIP).
void Activate(Activation act, float* x, int64_t n);
void ActivateRef(Activation act, float* x, int64_t n);

// gate[i] = act(gate[i]) * up[i]   (SwiGLU when act = kSilu)
void GatedActivate(Activation act, float* gate, const float* up, int64_t n);
void GatedActivateRef(Activation act, float* gate, const float* up, int64_t n);

// Rotary position embedding, HF "rotate_half" layout, on x[heads, head_dim]
// for one position: only the first rotary_dim dims of each head rotate
// (partial_rotary_factor); cos/sin hold rotary_dim/2 values for the position.
//   x1 = x[:rd/2], x2 = x[rd/2:rd];  x1' = x1*cos - x2*sin;  x2' = x2*cos + x1*sin
void ApplyRope(float* x, int64_t heads, int64_t head_dim, int64_t rotary_dim, const float* cos, const float* sin);
void ApplyRopeRef(float* x, int64_t heads, int64_t head_dim, int64_t rotary_dim, const float* cos, const float* sin);

// Multi-head attention with grouped-query heads.
//   q   [n_q, n_heads, head_dim]         queries at positions q_pos0 .. q_pos0+n_q-1
//   k,v [n_kv, n_kv_heads, head_dim]     keys/values at positions 0 .. n_kv-1
//   out [n_q, n_heads, head_dim]
// With causal, query i sees keys j <= q_pos0 + i. Query head h uses kv head
// h / (n_heads / n_kv_heads). Scores are scaled by `scale` (1/sqrt(head_dim)).
// `scratch` holds at least NumThreads() * n_kv floats.
void Attention(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v, int64_t n_kv,
               int64_t n_kv_heads, int64_t head_dim, int64_t q_pos0, bool causal, float scale, float* scratch,
               float* out);
void AttentionRef(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v, int64_t n_kv,
                  int64_t n_kv_heads, int64_t head_dim, int64_t q_pos0, bool causal, float scale, float* out);

}  // namespace bitlens::kernels
