// train/ops_linear: the fully connected layer y = x·wᵀ + b and its backward,
// as OpenBLAS products over fixed column blocks spread on the thread pool.
#include <cblas.h>

#include <algorithm>
#include <cstdint>

#include "base/thread_pool.h"
#include "train/ops.h"

namespace bitlens::train {
namespace {

// Every product is cut into blocks of kBlock output columns whose bounds depend
// only on the shapes, never on the thread count. Each block is one sgemm call
// that reduces over its whole inner dimension, so every output element is
// computed by the same call whatever the thread count: results are identical
// for 1 and N threads, and no partial sums need scratch memory.
constexpr int64_t kBlock = 64;

int64_t NumBlocks(int64_t n) { return (n + kBlock - 1) / kBlock; }

// Runs fn(begin, end) for every column block [begin, end) of [0, n).
template <typename F>
void ForEachColumnBlock(int64_t n, F&& fn) {
  ParallelFor(static_cast<size_t>(NumBlocks(n)), 1, [&](size_t b0, size_t b1, size_t) {
    for (size_t b = b0; b < b1; ++b) {
      const int64_t begin = static_cast<int64_t>(b) * kBlock;
      fn(begin, std::min(n, begin + kBlock));
    }
  });
}

}  // namespace

// x [m, k], w [n, k], b [n] or null  ->  y [m, n]
void LinearForward(const float* x, const float* w, const float* b, int64_t m, int64_t k, int64_t n, float* y) {
  if (m <= 0 || n <= 0) return;
  ForEachColumnBlock(n, [&](int64_t c0, int64_t c1) {
    const int64_t nb = c1 - c0;
    if (k <= 0) {
      for (int64_t r = 0; r < m; ++r) std::fill(y + r * n + c0, y + r * n + c1, 0.0f);
    } else {
      // y[:, c0:c1] = x · w[c0:c1, :]ᵀ
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(nb),
                  static_cast<int>(k), 1.0f, x, static_cast<int>(k), w + c0 * k, static_cast<int>(k), 0.0f, y + c0,
                  static_cast<int>(n));
    }
    if (b != nullptr) {
      for (int64_t r = 0; r < m; ++r) {
        float* yr = y + r * n;
        for (int64_t j = c0; j < c1; ++j) yr[j] += b[j];
      }
    }
  });
}

// dy [m, n], x [m, k], w [n, k] (may be null when dx is)
// dx [m, k] += dy · w;   dw [n, k] += dyᵀ · x;   db [n] += Σ_rows dy
void LinearBackward(const float* dy, const float* x, const float* w, int64_t m, int64_t k, int64_t n, float* dx,
                    float* dw, float* db) {
  if (m <= 0 || n <= 0) return;
  if (dx != nullptr && k > 0) {
    // dx[:, c0:c1] += dy · w[:, c0:c1]   (reduces over all n inside one call)
    ForEachColumnBlock(k, [&](int64_t c0, int64_t c1) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(c1 - c0),
                  static_cast<int>(n), 1.0f, dy, static_cast<int>(n), w + c0, static_cast<int>(k), 1.0f, dx + c0,
                  static_cast<int>(k));
    });
  }
  if (dw == nullptr && db == nullptr) return;
  ForEachColumnBlock(n, [&](int64_t c0, int64_t c1) {
    if (dw != nullptr && k > 0) {
      // dw[c0:c1, :] += dy[:, c0:c1]ᵀ · x   (reduces over all m rows inside one call)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(c1 - c0), static_cast<int>(k),
                  static_cast<int>(m), 1.0f, dy + c0, static_cast<int>(n), x, static_cast<int>(k), 1.0f, dw + c0 * k,
                  static_cast<int>(k));
    }
    if (db != nullptr) {
      // Column sums in double, rows in order, then one rounding into db.
      double sums[kBlock] = {};
      for (int64_t r = 0; r < m; ++r) {
        const float* dyr = dy + r * n;
        for (int64_t j = c0; j < c1; ++j) sums[j - c0] += dyr[j];
      }
      for (int64_t j = c0; j < c1; ++j) db[j] = static_cast<float>(db[j] + sums[j - c0]);
    }
  });
}

}  // namespace bitlens::train
