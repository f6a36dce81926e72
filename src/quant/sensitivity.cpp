// quant/sensitivity: relative output error per candidate format, from the
// layer's calibration Hessian (upper triangle) via BLAS ssymm.
#include "quant/sensitivity.h"

#include <cblas.h>

#include <cmath>
#include <limits>

#include "quant/rtn.h"

namespace bitlens::quant {

double QuadraticFormRows(const float* d, int64_t rows, int64_t k, const LayerStats* stats) {
  if (stats == nullptr) {  // H = I
    double s = 0;
    for (int64_t i = 0; i < rows * k; ++i) s += double(d[i]) * d[i];
    return s;
  }
  // dh [rows, k] = d · H, H symmetric read from its upper triangle.
  std::vector<float> dh(static_cast<size_t>(rows * k));
  cblas_ssymm(CblasRowMajor, CblasRight, CblasUpper, static_cast<int>(rows), static_cast<int>(k), 1.0f,
              stats->xtx.data(), static_cast<int>(k), d, static_cast<int>(k), 0.0f, dh.data(), static_cast<int>(k));
  double s = 0;
  for (int64_t i = 0; i < rows * k; ++i) s += double(dh[i]) * d[i];
  return s;
}

Result<std::vector<double>> RelativeOutputErrors(std::span<const FormatInfo* const> candidates, const float* w,
                                                 int64_t n, int64_t k, const LayerStats* stats,
                                                 const SensitivityOptions& options) {
  if (n <= 0 || k <= 0) return InvalidArgument("sensitivity: empty weight [" + std::to_string(n) + ", " + std::to_string(k) + "]");
  if (stats != nullptr && (stats->k != k || stats->xtx.size() != static_cast<size_t>(k * k))) {
    return InvalidArgument("sensitivity: statistics for k=" + std::to_string(stats->k) + " but the weight has k=" +
                           std::to_string(k));
  }
  // Evenly strided sample of rows: [rows, k].
  const int64_t rows = options.max_rows > 0 ? std::min(n, options.max_rows) : n;
  std::vector<float> sample(static_cast<size_t>(rows * k));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t src = r * n / rows;
    std::copy(w + src * k, w + (src + 1) * k, sample.begin() + r * k);
  }
  const double base = QuadraticFormRows(sample.data(), rows, k, stats);
  std::vector<double> errors;
  std::vector<float> deq(sample.size());
  for (const FormatInfo* f : candidates) {
    if (!CheckRowLength(*f, k).ok()) {
      errors.push_back(std::numeric_limits<double>::infinity());
      continue;
    }
    std::vector<uint8_t> packed(RowBytes(*f, k) * static_cast<size_t>(rows));
    BL_TRY(QuantizeRowsRef(*f, sample.data(), rows, k, RangeSearch::kMseClip, packed));
    BL_TRY(DequantizeRowsRef(*f, packed, rows, k, deq.data()));
    for (size_t i = 0; i < deq.size(); ++i) deq[i] -= sample[i];
    const double err = QuadraticFormRows(deq.data(), rows, k, stats);
    errors.push_back(base > 0 ? err / base : (err > 0 ? std::numeric_limits<double>::infinity() : 0.0));
  }
  return errors;
}

}  // namespace bitlens::quant
