// train/ops_patch: the ViT patch embedding (Conv2d with kernel = stride =
// patch, no padding) as im2col followed by the linear layer's GEMM.
#include <cstdint>
#include <cstring>

#include "base/thread_pool.h"
#include "train/ops.h"

namespace bitlens::train {

// pixels [3, h, w]; weight [dim, 3, patch, patch] (torch Conv2d layout, which
// is exactly a [dim, 3·patch·patch] matrix over the cols rows below);
// cols [(h/patch)·(w/patch), 3·patch·patch] with cols[p, (c·patch + ky)·patch + kx]
// = pixels[c, py·patch + ky, px·patch + kx] for patch p = py·(w/patch) + px;
// out [(h/patch)·(w/patch), dim] = cols · weightᵀ + bias.
// Pixels past the last whole patch (h or w not a multiple of patch) are
// dropped, as torch's Conv2d does without padding.
void PatchEmbedForward(const float* pixels, int64_t h, int64_t w, int64_t patch, const float* weight,
                       const float* bias, int64_t dim, float* cols, float* out) {
  if (patch <= 0) return;
  const int64_t grid_h = h / patch, grid_w = w / patch;
  const int64_t num_patches = grid_h * grid_w;
  const int64_t k = 3 * patch * patch;
  if (num_patches <= 0) return;
  ParallelFor(static_cast<size_t>(num_patches), 4, [&](size_t p0, size_t p1, size_t) {
    for (size_t p = p0; p < p1; ++p) {
      const int64_t py = static_cast<int64_t>(p) / grid_w, px = static_cast<int64_t>(p) % grid_w;
      float* dst = cols + static_cast<int64_t>(p) * k;
      for (int64_t c = 0; c < 3; ++c) {
        for (int64_t ky = 0; ky < patch; ++ky) {
          const float* src = pixels + (c * h + py * patch + ky) * w + px * patch;
          std::memcpy(dst + (c * patch + ky) * patch, src, sizeof(float) * patch);
        }
      }
    }
  });
  LinearForward(cols, weight, bias, num_patches, k, dim, out);
}

// dout [num_patches, dim]; cols as saved by the forward.
// dweight [dim, 3·patch·patch] += doutᵀ · cols;  dbias [dim] += Σ_patches dout
void PatchEmbedBackward(const float* dout, const float* cols, int64_t num_patches, int64_t patch, int64_t dim,
                        float* dweight, float* dbias) {
  LinearBackward(dout, cols, /*w=*/nullptr, num_patches, 3 * patch * patch, dim, /*dx=*/nullptr, dweight, dbias);
}

}  // namespace bitlens::train
