#include "quant/gptq.h"

#include <cblas.h>

#include <algorithm>
#include <numeric>
#include <string>

#include "base/thread_pool.h"
#include "quant/grid.h"
#include "quant/ternary.h"

// LAPACK from OpenBLAS (no LAPACKE header is installed). Column-major; the
// trailing arguments are the Fortran lengths of the character flags.
extern "C" {
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info, size_t uplo_len);
void strtri_(const char* uplo, const char* diag, const int* n, float* a, const int* lda, int* info,
             size_t uplo_len, size_t diag_len);
}

namespace bitlens::quant {
namespace {

int64_t GroupOf(const FormatInfo& f, int64_t column) {
  return f.group_size > 0 ? column / f.group_size : 0;
}

// The lazy batch width: a unit whose grids are chosen together must either lie
// inside one batch or start where a batch starts, because only then are all
// its weights error-compensated when its grids are chosen.
int64_t BatchWidth(int64_t requested, int64_t unit, int64_t k) {
  int64_t b = std::max<int64_t>(requested, 1);
  if (unit >= k) return b;  // one unit per row, chosen at column 0
  if (unit <= b) return (b + unit - 1) / unit * unit;
  return unit % b == 0 ? b : unit;
}

}  // namespace

std::vector<int64_t> ActOrderPermutation(const LayerStats& stats) {
  std::vector<int64_t> perm(static_cast<size_t>(stats.k));
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(),
                   [&](int64_t a, int64_t b) { return stats.Xtx(a, a) > stats.Xtx(b, b); });
  return perm;
}

Status GptqInverseHessianFactor(const LayerStats& stats, float percdamp,
                                std::span<const int64_t> perm, std::vector<float>* u) {
  const int64_t k = stats.k;
  if (stats.rows_seen <= 0) return InvalidArgument("GPTQ: the calibration statistics hold no rows");
  if (!perm.empty() && static_cast<int64_t>(perm.size()) != k) {
    return InvalidArgument("GPTQ: permutation has " + std::to_string(perm.size()) +
                           " entries for k=" + std::to_string(k));
  }
  const auto at = [&](int64_t i) { return perm.empty() ? i : perm[static_cast<size_t>(i)]; };
  const float scale = 2.0f / static_cast<float>(stats.rows_seen);
  // A = J P H Pᵀ J with J the reversal: if A = L Lᵀ then H' = (JLJ)(JLJ)ᵀ with
  // JLJ upper, so U = (JLJ)⁻¹ = J L⁻¹ J is the upper factor with UᵀU = H'⁻¹.
  u->assign(static_cast<size_t>(k * k), 0.0f);
  float* a = u->data();
  double diag_sum = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    const int64_t pi = at(k - 1 - i);
    for (int64_t j = 0; j <= i; ++j) a[i * k + j] = scale * stats.Xtx(pi, at(k - 1 - j));
    if (a[i * k + i] == 0.0f) a[i * k + i] = 1.0f;  // dead input: no signal, no coupling
    diag_sum += a[i * k + i];
  }
  const float damp = percdamp * static_cast<float>(diag_sum / static_cast<double>(k));
  for (int64_t i = 0; i < k; ++i) a[i * k + i] += damp;
  // Row-major lower = column-major upper.
  const int nk = static_cast<int>(k);
  int info = 0;
  spotrf_("U", &nk, a, &nk, &info, 1);
  if (info > 0) {
    return InvalidArgument("GPTQ: the Hessian is not positive definite after dampening " +
                           std::to_string(percdamp) + " (leading minor " + std::to_string(info) +
                           " of k=" + std::to_string(k) + "); raise percdamp");
  }
  if (info < 0) return Internal("GPTQ: spotrf argument " + std::to_string(-info) + " invalid");
  strtri_("U", "N", &nk, a, &nk, &info, 1, 1);
  if (info != 0) return Internal("GPTQ: strtri failed with info " + std::to_string(info));
  std::reverse(u->begin(), u->end());  // (i, j) <-> (k-1-i, k-1-j): J L⁻¹ J
  return Status::Ok();
}

Status GptqQuantize(const FormatInfo& f, const float* w, int64_t n, int64_t k,
                    const LayerStats& stats, const QuantizeOptions& options,
                    std::span<uint8_t> out) {
  const GptqOptions& go = options.gptq;
  const bool static_grids = go.act_order || go.static_groups;
  std::vector<int64_t> perm;
  if (go.act_order) perm = ActOrderPermutation(stats);
  std::vector<float> u;
  BL_TRY(GptqInverseHessianFactor(stats, go.percdamp, perm, &u));

  const int qmax = QMax(f);
  const int64_t groups = NumGroups(f, k);
  const int64_t unit = GridUnit(f, k);
  const int64_t bw = BatchWidth(go.block_size, unit, k);
  const size_t row_bytes = RowBytes(f, k);

  // Per-input weights of the grid choice: H_ii (plus a trace-relative floor so
  // that a group of dead inputs falls back to the unweighted error).
  std::vector<float> diag;
  if (go.weighted_grids) {
    diag.resize(static_cast<size_t>(k));
    double mean = 0.0;
    for (int64_t i = 0; i < k; ++i) mean += stats.Xtx(i, i);
    mean /= static_cast<double>(k);
    for (int64_t i = 0; i < k; ++i) diag[i] = stats.Xtx(i, i) + static_cast<float>(1e-6 * mean);
  }
  // Grids of w[len] starting at input column c0 (in original order).
  const auto choose = [&](const float* wslice, int64_t c0, int64_t len, GroupGrid* out_grids) {
    ChooseGrids(f, options.grid, options.hqq, wslice, len, out_grids);
    if (go.weighted_grids) {
      std::vector<GroupGrid> base(out_grids, out_grids + NumGroups(f, len));
      DiagWeightedRowGrids(f, wslice, diag.data() + c0, len, base.data(), out_grids);
    }
  };

  // Working weights in quantization order (columns permuted under act_order).
  std::vector<float> wp(static_cast<size_t>(n * k));
  std::vector<GroupGrid> grids(static_cast<size_t>(n * groups));
  std::vector<uint8_t> codes(static_cast<size_t>(n * k));  // original column order
  std::vector<float> err(static_cast<size_t>(n * bw));     // [n, bw] scaled errors of a batch
  ParallelFor(static_cast<size_t>(n), 8, [&](size_t r0, size_t r1, size_t) {
    for (size_t r = r0; r < r1; ++r) {
      const float* src = w + r * k;
      float* dst = wp.data() + r * k;
      if (perm.empty()) {
        std::copy(src, src + k, dst);
      } else {
        for (int64_t i = 0; i < k; ++i) dst[i] = src[perm[static_cast<size_t>(i)]];
      }
      if (static_grids) choose(src, 0, k, &grids[r * groups]);
    }
  });

  for (int64_t b0 = 0; b0 < k; b0 += bw) {
    const int64_t b1 = std::min(k, b0 + bw);
    // Columns [b0, b1) row by row: rows are independent given U.
    ParallelFor(static_cast<size_t>(n), 4, [&](size_t r0, size_t r1, size_t) {
      for (size_t r = r0; r < r1; ++r) {
        float* wr = wp.data() + r * k;
        float* er = err.data() + r * bw;
        GroupGrid* gr = &grids[r * groups];
        uint8_t* cr = &codes[r * k];
        for (int64_t i = b0; i < b1; ++i) {
          if (!static_grids && i % unit == 0) {
            choose(wr + i, i, std::min(unit, k - i), gr + GroupOf(f, i));
          }
          const int64_t col = perm.empty() ? i : perm[static_cast<size_t>(i)];
          const GroupGrid& g = gr[GroupOf(f, col)];
          const uint8_t q = NearestCode(g, qmax, wr[i]);
          cr[col] = q;
          const float* ui = u.data() + i * k;
          const float e = (wr[i] - GridValue(g, q)) / ui[i];
          er[i - b0] = e;
          for (int64_t j = i + 1; j < b1; ++j) wr[j] -= e * ui[j];
        }
      }
    });
    // Lazy batch update of the columns after the batch (GPTQ, Alg. 1):
    // W[:, b1:] -= E [n, b] · U[b0:b1, b1:].
    if (b1 < k) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n),
                  static_cast<int>(k - b1), static_cast<int>(b1 - b0), -1.0f, err.data(),
                  static_cast<int>(bw), u.data() + b0 * k + b1, static_cast<int>(k), 1.0f,
                  wp.data() + b1, static_cast<int>(k));
    }
  }

  ParallelFor(static_cast<size_t>(n), 16, [&](size_t r0, size_t r1, size_t) {
    for (size_t r = r0; r < r1; ++r) {
      EncodeRow(f, &grids[r * groups], &codes[r * k], k, out.data() + r * row_bytes);
    }
  });
  return Status::Ok();
}

}  // namespace bitlens::quant
