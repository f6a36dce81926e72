// train/ops_embedding: token embedding lookup and its scatter-add backward.
// Ids are trusted here: the caller (model/trainer) checks them against the
// vocabulary size when it builds the example.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "base/thread_pool.h"
#include "train/ops.h"

namespace bitlens::train {

// ids [t], table [vocab, dim] -> out [t, dim]
void EmbeddingForward(const int32_t* ids, int64_t t, const float* table, int64_t dim, float* out) {
  if (t <= 0 || dim <= 0) return;
  ParallelFor(static_cast<size_t>(t), 8, [&](size_t r0, size_t r1, size_t) {
    for (size_t r = r0; r < r1; ++r) {
      std::memcpy(out + r * dim, table + static_cast<int64_t>(ids[r]) * dim, sizeof(float) * dim);
    }
  });
}

// ids [t], dout [t, dim] -> dtable [vocab, dim] +=
// A token that repeats hits the same table row, so rows cannot be split over
// threads; columns can. Each column range is summed over t in token order,
// so the result does not depend on the thread count.
void EmbeddingBackward(const int32_t* ids, int64_t t, const float* dout, int64_t dim, float* dtable) {
  if (t <= 0 || dim <= 0 || dtable == nullptr) return;
  ParallelFor(static_cast<size_t>(dim), 64, [&](size_t c0, size_t c1, size_t) {
    for (int64_t r = 0; r < t; ++r) {
      float* dst = dtable + static_cast<int64_t>(ids[r]) * dim;
      const float* src = dout + r * dim;
      for (size_t c = c0; c < c1; ++c) dst[c] += src[c];
    }
  });
}

}  // namespace bitlens::train
