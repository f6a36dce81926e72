// kernels/fast_forwarding: the fast entry points, for now forwarding to the
// scalar references so callers can link while the Highway paths are built.
#include "kernels/ops.h"

namespace bitlens::kernels {

void MatMul(const float* x, int64_t m, const WeightView& w, const float* bias, float* y) {
  MatMulRef(x, m, w, bias, y);
}
void RmsNorm(const float* x, const float* weight, int64_t rows, int64_t dim, float eps, float* y) {
  RmsNormRef(x, weight, rows, dim, eps, y);
}
void LayerNorm(const float* x, const float* weight, const float* bias, int64_t rows, int64_t dim, float eps,
               float* y) {
  LayerNormRef(x, weight, bias, rows, dim, eps, y);
}
void Softmax(float* x, int64_t rows, int64_t n) { SoftmaxRef(x, rows, n); }
void Activate(Activation act, float* x, int64_t n) { ActivateRef(act, x, n); }
void GatedActivate(Activation act, float* gate, const float* up, int64_t n) { GatedActivateRef(act, gate, up, n); }
void ApplyRope(float* x, int64_t heads, int64_t head_dim, int64_t rotary_dim, const float* cos, const float* sin) {
  ApplyRopeRef(x, heads, head_dim, rotary_dim, cos, sin);
}
void Attention(const float* q, int64_t n_q, int64_t n_heads, const float* k, const float* v, int64_t n_kv,
               int64_t n_kv_heads, int64_t head_dim, int64_t q_pos0, bool causal, float scale, float* scratch,
               float* out) {
  AttentionRef(q, n_q, n_heads, k, v, n_kv, n_kv_heads, head_dim, q_pos0, causal, scale, out);
}

}  // namespace bitlens::kernels
