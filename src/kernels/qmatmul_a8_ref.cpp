// kernels/qmatmul_a8_ref: the scalar definition of the W2A8 result (int8
// activation blocks, exact integer dots, f32 group terms in a fixed order) and
// the process-wide activation option. Works for every format with a grid.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "kernels/qmatmul_a8.h"
#include "quant/grid.h"

// The reference fixes each f32 rounding; a contracted a·b + c would change it.
#pragma GCC optimize("fp-contract=off")

namespace bitlens::kernels {

namespace {
std::atomic<QActivations> g_activations{QActivations::kF32};

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5·2^23 leaves no
// fraction bits, so the f32 add itself rounds. The kernels use the same two
// operations (Highway's scalar NearestInt rounds 0.5 − 2^-25 up, this does not).
inline float RoundEven(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 · 2^23
  return (v + kMagic) - kMagic;
}
}  // namespace

void SetQActivations(QActivations a) { g_activations.store(a, std::memory_order_relaxed); }
QActivations GetQActivations() { return g_activations.load(std::memory_order_relaxed); }
const char* QActivationsName(QActivations a) {
  return a == QActivations::kInt8 ? "a8" : a == QActivations::kInt8Lut ? "a8lut" : "a16";
}
bool ParseQActivations(std::string_view name, QActivations* a) {
  for (QActivations v : {QActivations::kF32, QActivations::kInt8, QActivations::kInt8Lut}) {
    if (name == QActivationsName(v)) {
      *a = v;
      return true;
    }
  }
  return false;
}

bool A8Supports(const quant::FormatInfo& f, int64_t k) {
  if (!quant::HasGrid(f) || k <= 0 || k > kA8MaxK) return false;
  return f.group_size == 0 || f.group_size % kA8Block == 0;
}

// x [k] -> xq [ceil(k/A)·A], d [ceil(k/A)], bsum [ceil(k/A)] for blocks of A
void QuantizeActivationBlocksRef(const float* x, int64_t k, int block, int8_t* xq, float* d, int32_t* bsum) {
  const int64_t nb = (k + block - 1) / block;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t i0 = b * block, i1 = std::min(k, i0 + block);
    float amax = 0.0f;
    for (int64_t i = i0; i < i1; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    d[b] = amax / 127.0f;
    int32_t s = 0;
    for (int64_t i = i0; i < i0 + block; ++i) {
      int32_t q = 0;
      if (i < i1) q = static_cast<int32_t>(std::clamp(RoundEven(x[i] * inv), -127.0f, 127.0f));
      xq[i] = static_cast<int8_t>(q);
      s += q;
    }
    bsum[b] = s;
  }
}

void QuantizeActivationsA8Ref(const float* x, int64_t k, int8_t* xq, float* d, int32_t* bsum) {
  QuantizeActivationBlocksRef(x, k, kA8Block, xq, d, bsum);
}

void QMatMulA8Ref(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                  int64_t k, const float* bias, float* y) {
  QMatMulInt8BlocksRef(x, m, f, w, n, k, bias, y, kA8Block);
}

void QMatMulInt8BlocksRef(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                          int64_t k, const float* bias, float* y, int block) {
  const int64_t nb = (k + block - 1) / block;
  const int64_t ng = quant::NumGroups(f, k);
  const int64_t g = f.group_size == 0 ? k : f.group_size;
  const int64_t blocks_per_group = (g + block - 1) / block;
  const size_t row_bytes = quant::RowBytes(f, k);
  std::vector<int8_t> xq(static_cast<size_t>(nb * block));
  std::vector<float> d(nb);
  std::vector<int32_t> bsum(nb);
  std::vector<quant::GroupGrid> grids(ng);
  std::vector<uint8_t> codes(k);
  for (int64_t r = 0; r < m; ++r) {
    QuantizeActivationBlocksRef(x + r * k, k, block, xq.data(), d.data(), bsum.data());
    for (int64_t o = 0; o < n; ++o) {
      quant::DecodeRow(f, w + o * row_bytes, k, grids.data(), codes.data());
      float sum = 0.0f;
      for (int64_t G = 0; G < ng; ++G) {
        const int64_t b0 = G * blocks_per_group, b1 = std::min(nb, b0 + blocks_per_group);
        float acc = 0.0f, sx = 0.0f;
        for (int64_t b = b0; b < b1; ++b) {
          int32_t isum = 0;
          for (int64_t i = b * block; i < std::min(k, (b + 1) * block); ++i) {
            isum += static_cast<int32_t>(xq[i]) * static_cast<int32_t>(codes[i]);
          }
          acc += d[b] * static_cast<float>(isum);
          sx += d[b] * static_cast<float>(bsum[b]);
        }
        sum += grids[G].scale * acc + grids[G].offset * sx;
      }
      y[r * n + o] = bias ? sum + bias[o] : sum;
    }
  }
}

}  // namespace bitlens::kernels
