// kernels/qmatmul: row-parallel driver over the format table's row dot
// products. Per-format SIMD row kernels plug in here.
#include "kernels/qmatmul.h"

#include "base/thread_pool.h"
#include "kernels/qmatmul_a8.h"

namespace bitlens::kernels {

void QMatMul(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
             int64_t k, const float* bias, float* y) {
  if (m <= 0 || n <= 0) return;
  // W2A8 when chosen (process-wide option) and the format has integer codes.
  if (GetQActivations() == QActivations::kInt8 && A8Supports(f, k)) return QMatMulA8(x, m, f, w, n, k, bias, y);
  const size_t row_bytes = quant::RowBytes(f, k);
  auto rows = [&](size_t begin, size_t end, size_t /*worker*/) {
    for (int64_t r = 0; r < m; ++r) {
      for (size_t o = begin; o < end; ++o) {
        const float dot = f.vec_dot_ref(f, w + o * row_bytes, x + r * k, k);
        y[r * n + static_cast<int64_t>(o)] = bias ? dot + bias[o] : dot;
      }
    }
  };
  ParallelFor(static_cast<size_t>(n), 16, rows);
}

}  // namespace bitlens::kernels
