// model/synth_random: the deterministic random numbers of synthesized
// weights. Each tensor gets its own stream keyed by (seed, tensor name), so
// a tensor's values do not depend on sharding, order or dtype.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bitlens {

// SplitMix64 (Steele, Lea, Flood 2014) as a counter-based generator, with
// normals from Marsaglia's polar method (no trigonometry).
class NormalStream {
 public:
  NormalStream(uint64_t seed, std::string_view tensor_name);
  // out[0..n) ~ N(0, stddev^2).
  void Fill(float* out, size_t n, float stddev);

 private:
  uint64_t Next();
  uint64_t state_;
  bool has_spare_ = false;
  float spare_ = 0;
};

}  // namespace bitlens
