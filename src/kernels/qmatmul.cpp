// kernels/qmatmul: the QMatMul driver. W2A8 when chosen (qmatmul_a8);
// otherwise f16/bf16 go to the float MatMul, formats with a W·A16 kernel
// (qmatmul_a16) run it, and any other format runs the table's scalar row dot
// products, so a new format is correct before it is fast.
// Work is split by output rows over the pool (grain 16).
#include "kernels/qmatmul.h"

#include <string_view>

#include "base/thread_pool.h"
#include "kernels/ops.h"
#include "kernels/qmatmul_a16.h"
#include "kernels/qmatmul_a8.h"
#include "kernels/qmatmul_lut.h"

namespace bitlens::kernels {
namespace {

// The reference row loop, parallel over output rows.
void QMatMulRowsRef(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
                    int64_t k, const float* bias, float* y) {
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

// f16/bf16 passthrough rows are plain half matrices the float MatMul reads.
bool PassthroughDType(const quant::FormatInfo& f, DType* dtype) {
  const std::string_view name = f.name;
  if (name != "f16" && name != "bf16") return false;
  *dtype = name == "f16" ? DType::kF16 : DType::kBF16;
  return true;
}

}  // namespace

bool QMatMulHasFastPath(const quant::FormatInfo& f) {
  DType dtype;
  return PassthroughDType(f, &dtype) || QMatMulA16Supports(f);
}

void QMatMul(const float* x, int64_t m, const quant::FormatInfo& f, const uint8_t* w, int64_t n,
             int64_t k, const float* bias, float* y) {
  if (m <= 0 || n <= 0) return;
  // W2A8 when chosen (process-wide option) and the format has integer codes;
  // a8lut decodes through the table kernel where there is one.
  const QActivations acts = GetQActivations();
  if (acts == QActivations::kInt8Lut && m == 1 && LutSupports(f, k)) return QMatMulLut(x, m, f, w, n, k, bias, y);
  if (acts != QActivations::kF32 && A8Supports(f, k)) return QMatMulA8(x, m, f, w, n, k, bias, y);
  DType dtype;
  if (PassthroughDType(f, &dtype)) return MatMul(x, m, WeightView{dtype, w, n, k}, bias, y);
  if (QMatMulA16Supports(f)) {
    auto rows = [&](size_t begin, size_t end, size_t /*worker*/) {
      QMatMulA16Rows(x, m, f, w, n, k, bias, static_cast<int64_t>(begin), static_cast<int64_t>(end), y);
    };
    return ParallelFor(static_cast<size_t>(n), 16, rows);
  }
  QMatMulRowsRef(x, m, f, w, n, k, bias, y);
}

}  // namespace bitlens::kernels
