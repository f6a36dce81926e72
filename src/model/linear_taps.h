// model/linear_taps: a hook that sees the f32 input of each group of linear
// layers inside a transformer block, so calibration can accumulate activation
// statistics while the unchanged layer code runs (null in ordinary inference).
#pragma once

#include <cstdint>

namespace bitlens {

// Where linear layers read their input inside one block. Layers sharing an
// input share a site: q/k/v (kAttnIn), o / out_proj (kAttnOut), gate/up or
// fc1 (kMlpIn), down or fc2 (kMlpOut).
enum class LinearSite { kAttnIn = 0, kAttnOut = 1, kMlpIn = 2, kMlpOut = 3 };
inline constexpr int kNumLinearSites = 4;

class LinearInputTap {
 public:
  virtual ~LinearInputTap() = default;
  // x [rows, k] row-major: the input every linear layer at `site` multiplies.
  virtual void OnInput(LinearSite site, const float* x, int64_t rows, int64_t k) = 0;
};

}  // namespace bitlens
