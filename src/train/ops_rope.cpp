// train/ops_rope: rotary position embedding (HF rotate_half layout, partial
// rotary) and its backward, the transpose of the per-pair rotation.
#include <cstdint>

#include "base/thread_pool.h"
#include "train/ops.h"

namespace bitlens::train {

// x, y [t, heads, head_dim]; cos, sin [t, rotary_dim / 2]. Pair i of a head is
// (x[i], x[i + half]); dims from rotary_dim on are copied. y may alias x.
// Same arithmetic as kernels::ApplyRopeRef, so training and inference agree.
void RopeForward(const float* x, int64_t t, int64_t heads, int64_t head_dim, int64_t rotary_dim, const float* cos,
                 const float* sin, float* y) {
  const int64_t half = rotary_dim / 2;
  auto rows = [&](size_t begin, size_t end, size_t /*worker*/) {
    for (size_t p = begin; p < end; ++p) {
      const float* c = cos + p * half;
      const float* s = sin + p * half;
      for (int64_t h = 0; h < heads; ++h) {
        const float* xh = x + (static_cast<int64_t>(p) * heads + h) * head_dim;
        float* yh = y + (static_cast<int64_t>(p) * heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float x1 = xh[i], x2 = xh[i + half];
          yh[i] = x1 * c[i] - x2 * s[i];
          yh[i + half] = x2 * c[i] + x1 * s[i];
        }
        if (yh != xh) {
          for (int64_t d = 2 * half; d < head_dim; ++d) yh[d] = xh[d];
        }
      }
    }
  };
  ParallelFor(static_cast<size_t>(t), 16, rows);
}

// y1 = x1 c − x2 s, y2 = x2 c + x1 s  ⇒  dx1 += dy1 c + dy2 s,  dx2 += dy2 c − dy1 s.
void RopeBackward(const float* dy, int64_t t, int64_t heads, int64_t head_dim, int64_t rotary_dim, const float* cos,
                  const float* sin, float* dx) {
  if (dx == nullptr) return;
  const int64_t half = rotary_dim / 2;
  auto rows = [&](size_t begin, size_t end, size_t /*worker*/) {
    for (size_t p = begin; p < end; ++p) {
      const float* c = cos + p * half;
      const float* s = sin + p * half;
      for (int64_t h = 0; h < heads; ++h) {
        const float* dyh = dy + (static_cast<int64_t>(p) * heads + h) * head_dim;
        float* dxh = dx + (static_cast<int64_t>(p) * heads + h) * head_dim;
        for (int64_t i = 0; i < half; ++i) {
          const float g1 = dyh[i], g2 = dyh[i + half];
          dxh[i] += g1 * c[i] + g2 * s[i];
          dxh[i + half] += g2 * c[i] - g1 * s[i];
        }
        for (int64_t d = 2 * half; d < head_dim; ++d) dxh[d] += dyh[d];
      }
    }
  };
  ParallelFor(static_cast<size_t>(t), 16, rows);
}

}  // namespace bitlens::train
