// model/rope: rotary position embedding tables for the decoder — inverse
// frequencies and per-position cos/sin for the rope types transformers knows
// as default, linear, llama3 and Phi-3's longrope, with partial rotary dims.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"

namespace bitlens {

// rotary_dim = int(head_dim * partial_rotary_factor), as transformers computes it.
int64_t RotaryDim(const TextConfig& config);

// Inverse frequencies [rotary_dim / 2] in float32, the way transformers'
// rope init functions compute them. `use_long_factor` picks longrope's
// long_factor (ignored by the other types).
std::vector<float> RopeInverseFrequencies(const TextConfig& config, bool use_long_factor);

// The factor transformers multiplies cos and sin by (longrope's attention
// factor; 1 for the other types).
float RopeAttentionScaling(const TextConfig& config);

// cos/sin for positions [0, max_positions), [positions, rotary_dim/2] each,
// already multiplied by the attention scaling. For longrope two sets exist;
// transformers picks one per forward call: the long set when the highest
// position in that call + 1 exceeds original_max_position_embeddings.
class RopeTable {
 public:
  static Result<RopeTable> Build(const TextConfig& config, int64_t max_positions);

  int64_t rotary_dim() const { return rotary_dim_; }
  int64_t max_positions() const { return max_positions_; }
  // Whether a forward over positions up to `last_position` uses the long set.
  bool UseLong(int64_t last_position) const;
  const float* cos(int64_t pos, bool use_long) const { return Row(use_long ? cos_long_ : cos_, pos); }
  const float* sin(int64_t pos, bool use_long) const { return Row(use_long ? sin_long_ : sin_, pos); }

 private:
  const float* Row(const std::vector<float>& t, int64_t pos) const { return t.data() + pos * (rotary_dim_ / 2); }
  int64_t rotary_dim_ = 0;
  int64_t max_positions_ = 0;
  int64_t long_threshold_ = -1;  // original_max_position_embeddings for longrope, else -1
  std::vector<float> cos_, sin_, cos_long_, sin_long_;
};

}  // namespace bitlens
