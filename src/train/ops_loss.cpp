// train/ops_loss: the scalar losses with their gradients fused in one pass:
// softmax cross-entropy (next-token loss), KL divergence on tempered logits
// (distillation) and squared error (hidden-state matching).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "base/thread_pool.h"
#include "train/ops.h"

namespace bitlens::train {
namespace {

// A loss is a sum over rows (or elements) in double. To make it identical for
// every thread count without scratch memory, the rows are cut into at most
// kMaxBlocks contiguous blocks whose bounds depend only on the row count; each
// block sums its rows in order into a stack slot and the slots are added in
// block order at the end.
constexpr int64_t kMaxBlocks = 64;

template <typename F>
double SumOverBlocks(int64_t rows, F&& row_sum) {
  if (rows <= 0) return 0.0;
  const int64_t blocks = std::min(rows, kMaxBlocks);
  double partial[kMaxBlocks] = {};
  ParallelFor(static_cast<size_t>(blocks), 1, [&](size_t b0, size_t b1, size_t) {
    for (size_t b = b0; b < b1; ++b) {
      const int64_t begin = rows * static_cast<int64_t>(b) / blocks;
      const int64_t end = rows * static_cast<int64_t>(b + 1) / blocks;
      double s = 0.0;
      for (int64_t r = begin; r < end; ++r) s += row_sum(r);
      partial[b] = s;
    }
  });
  double total = 0.0;
  for (int64_t b = 0; b < blocks; ++b) total += partial[b];
  return total;
}

// log Σ_i exp(x_i · inv_temp) over one row, stable for any logits.
double LogSumExp(const float* x, int64_t v, double inv_temp) {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < v; ++i) max = std::max(max, x[i]);
  const double m = max * inv_temp;
  double sum = 0.0;
  for (int64_t i = 0; i < v; ++i) sum += std::exp(x[i] * inv_temp - m);
  return m + std::log(sum);
}

}  // namespace

// logits [t, v], targets [t] -> Σ_counted −log softmax(logits)[target];
// dlogits [t, v] += scale · (softmax − onehot) on counted rows.
// A target < 0 is ignored (HF's -100). A target >= v is a caller bug (the
// example builder checks ids against the vocabulary); it is ignored too rather
// than read out of bounds.
double CrossEntropyForwardBackward(const float* logits, const int32_t* targets, int64_t t, int64_t v, float scale,
                                   float* dlogits) {
  if (v <= 0) return 0.0;
  return SumOverBlocks(t, [&](int64_t r) -> double {
    const int32_t target = targets[r];
    if (target < 0 || target >= v) return 0.0;
    const float* lr = logits + r * v;
    const double lse = LogSumExp(lr, v, 1.0);
    if (dlogits != nullptr) {
      float* dr = dlogits + r * v;
      for (int64_t i = 0; i < v; ++i) {
        const double p = std::exp(lr[i] - lse);
        dr[i] = static_cast<float>(dr[i] + scale * (p - (i == target ? 1.0 : 0.0)));
      }
    }
    return lse - lr[target];
  });
}

// student, teacher [t, v]; mask [t] or null ->
// Σ_rows Σ_i p_i (log p_i − log q_i), p = softmax(teacher/τ), q = softmax(student/τ);
// dstudent [t, v] += scale · (q − p) / τ  (= scale · d KL / d student).
double KlDivForwardBackward(const float* student, const float* teacher, const uint8_t* mask, int64_t t, int64_t v,
                            float temperature, float scale, float* dstudent) {
  if (v <= 0) return 0.0;
  const double inv_temp = 1.0 / static_cast<double>(temperature);
  return SumOverBlocks(t, [&](int64_t r) -> double {
    if (mask != nullptr && mask[r] == 0) return 0.0;
    const float* sr = student + r * v;
    const float* tr = teacher + r * v;
    const double lse_s = LogSumExp(sr, v, inv_temp);
    const double lse_t = LogSumExp(tr, v, inv_temp);
    double kl = 0.0;
    float* dr = dstudent != nullptr ? dstudent + r * v : nullptr;
    for (int64_t i = 0; i < v; ++i) {
      const double log_q = sr[i] * inv_temp - lse_s;
      const double log_p = tr[i] * inv_temp - lse_t;
      const double p = std::exp(log_p);
      kl += p * (log_p - log_q);  // p underflowing to 0 contributes 0, log_p stays finite
      if (dr != nullptr) dr[i] = static_cast<float>(dr[i] + scale * (std::exp(log_q) - p) * inv_temp);
    }
    return kl;
  });
}

// a, b, da [n] -> Σ (a − b)²;  da += scale · 2 (a − b)
double MseForwardBackward(const float* a, const float* b, int64_t n, float scale, float* da) {
  return SumOverBlocks(n, [&](int64_t i) -> double {
    const double d = static_cast<double>(a[i]) - b[i];
    if (da != nullptr) da[i] = static_cast<float>(da[i] + scale * 2.0 * d);
    return d * d;
  });
}

}  // namespace bitlens::train
