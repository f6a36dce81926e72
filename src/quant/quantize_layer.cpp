#include "quant/quantize_layer.h"

#include <cblas.h>

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "quant/gptq.h"
#include "quant/hqq.h"
#include "quant/rtn.h"
#include "quant/ternary.h"

namespace bitlens::quant {

Result<QuantMethod> ParseQuantMethod(std::string_view name) {
  if (name == "rtn") return QuantMethod::kRtn;
  if (name == "hqq") return QuantMethod::kHqq;
  if (name == "gptq") return QuantMethod::kGptq;
  return InvalidArgument("unknown quantization method '" + std::string(name) +
                         "' (known: rtn, hqq, gptq)");
}

const char* QuantMethodName(QuantMethod m) {
  switch (m) {
    case QuantMethod::kRtn: return "rtn";
    case QuantMethod::kHqq: return "hqq";
    case QuantMethod::kGptq: return "gptq";
  }
  return "?";
}

int64_t GridUnit(const FormatInfo& f, int64_t k) {
  if (f.group_size <= 0 || f.row_header_bytes > 0) return k;
  return std::max<int64_t>(f.block_weights, f.group_size);
}

void ChooseGrids(const FormatInfo& f, GridMethod method, const HqqOptions& hqq, const float* w,
                 int64_t len, GroupGrid* grids) {
  switch (method) {
    case GridMethod::kMinMax: ChooseRowGrids(f, w, len, RangeSearch::kMinMax, grids); return;
    case GridMethod::kMseClip: ChooseRowGrids(f, w, len, RangeSearch::kMseClip, grids); return;
    case GridMethod::kMseRefine: RefinedRowGrids(f, w, len, grids); return;
    case GridMethod::kHqq: HqqRowGrids(f, hqq, w, len, grids); return;
  }
}

Result<double> RelativeOutputError(const float* w, const float* w_hat, int64_t n, int64_t k,
                                   const LayerStats& stats, int64_t max_rows, int64_t* rows_used) {
  if (stats.k != k) {
    return InvalidArgument("output error: calibration statistics have k=" + std::to_string(stats.k) +
                           " but the weight has k=" + std::to_string(k));
  }
  if (stats.rows_seen <= 0) return InvalidArgument("output error: calibration statistics hold no rows");
  const int64_t rows = (max_rows <= 0 || max_rows >= n) ? n : max_rows;
  if (rows_used != nullptr) *rows_used = rows;
  // A [2·rows, k] = [D; W] over the chosen rows, T = A · H (H upper, symmetric).
  std::vector<float> a(static_cast<size_t>(2 * rows * k)), t(a.size());
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t r = rows == n ? i : i * n / rows;
    for (int64_t j = 0; j < k; ++j) {
      a[i * k + j] = w[r * k + j] - w_hat[r * k + j];
      a[(rows + i) * k + j] = w[r * k + j];
    }
  }
  cblas_ssymm(CblasRowMajor, CblasRight, CblasUpper, static_cast<int>(2 * rows),
              static_cast<int>(k), 1.0f, stats.xtx.data(), static_cast<int>(k), a.data(),
              static_cast<int>(k), 0.0f, t.data(), static_cast<int>(k));
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < rows * k; ++i) num += double(a[i]) * t[i];
  for (int64_t i = rows * k; i < 2 * rows * k; ++i) den += double(a[i]) * t[i];
  if (den <= 0.0) return num <= 0.0 ? 0.0 : INFINITY;
  return num / den;
}

namespace {

// RTN / HQQ: grids per row, then nearest codes.
void QuantizeRowsWithGrids(const FormatInfo& f, GridMethod method, const HqqOptions& hqq,
                           const float* w, int64_t n, int64_t k, uint8_t* out) {
  const int qmax = QMax(f);
  const int64_t groups = NumGroups(f, k);
  const size_t row_bytes = RowBytes(f, k);
  const int64_t gs = f.group_size > 0 ? f.group_size : k;
  ParallelFor(static_cast<size_t>(n), 4, [&](size_t r0, size_t r1, size_t) {
    std::vector<GroupGrid> grids(static_cast<size_t>(groups));
    std::vector<uint8_t> codes(static_cast<size_t>(k));
    for (size_t r = r0; r < r1; ++r) {
      const float* wr = w + r * k;
      ChooseGrids(f, method, hqq, wr, k, grids.data());
      for (int64_t i = 0; i < k; ++i) codes[i] = NearestCode(grids[i / gs], qmax, wr[i]);
      EncodeRow(f, grids.data(), codes.data(), k, out + r * row_bytes);
    }
  });
}

}  // namespace

Status QuantizeLinear(QuantMethod method, const FormatInfo& format, const float* w, int64_t n,
                      int64_t k, const LayerStats* stats, const QuantizeOptions& options,
                      std::span<uint8_t> out, LinearQuantResult* result) {
  const std::string what = std::string(QuantMethodName(method)) + " " + format.name;
  if (!HasGrid(format)) {
    return InvalidArgument(what + ": " + format.name +
                           " is a passthrough format without grids; store it directly");
  }
  if (n <= 0 || k <= 0) {
    return InvalidArgument(what + ": bad weight shape [" + std::to_string(n) + ", " +
                           std::to_string(k) + "]");
  }
  BL_TRY(CheckRowLength(format, k).WithContext(what));
  const size_t need = static_cast<size_t>(n) * RowBytes(format, k);
  if (out.size() != need) {
    return InvalidArgument(what + ": output holds " + std::to_string(out.size()) + " bytes, [" +
                           std::to_string(n) + ", " + std::to_string(k) + "] needs " +
                           std::to_string(need));
  }
  if (stats != nullptr && stats->k != k) {
    return InvalidArgument(what + ": calibration statistics have k=" + std::to_string(stats->k) +
                           " but the weight has k=" + std::to_string(k));
  }
  if (stats != nullptr && stats->rows_seen <= 0) {
    return InvalidArgument(what + ": calibration statistics hold no rows");
  }
  if (method == QuantMethod::kGptq && stats == nullptr) {
    return InvalidArgument(what + ": GPTQ needs calibration statistics (--calib)");
  }
  for (int64_t i = 0; i < n * k; ++i) {
    if (!std::isfinite(w[i])) {
      return InvalidArgument(what + ": weight [" + std::to_string(i / k) + ", " +
                             std::to_string(i % k) + "] is not finite");
    }
  }

  const auto t0 = std::chrono::steady_clock::now();
  switch (method) {
    case QuantMethod::kRtn:
      QuantizeRowsWithGrids(format, options.grid, options.hqq, w, n, k, out.data());
      break;
    case QuantMethod::kHqq:
      QuantizeRowsWithGrids(format, GridMethod::kHqq, options.hqq, w, n, k, out.data());
      break;
    case QuantMethod::kGptq:
      BL_TRY(GptqQuantize(format, w, n, k, *stats, options, out).WithContext(what));
      break;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (result == nullptr) return Status::Ok();

  *result = LinearQuantResult{};
  result->seconds = seconds;
  std::vector<float> w_hat(static_cast<size_t>(n * k));
  BL_TRY(DequantizeRowsRef(format, out, n, k, w_hat.data()).WithContext(what));
  double se = 0.0;
  for (int64_t i = 0; i < n * k; ++i) se += (double(w[i]) - w_hat[i]) * (double(w[i]) - w_hat[i]);
  result->weight_mse = se / static_cast<double>(n * k);
  if (stats != nullptr) {
    BL_ASSIGN_OR_RETURN(result->rel_output_error,
                        RelativeOutputError(w, w_hat.data(), n, k, *stats, options.error_rows,
                                            &result->error_rows_used));
  }
  return Status::Ok();
}

}  // namespace bitlens::quant
