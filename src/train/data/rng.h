// train/data/rng: the integer random number generator of the synthetic data.
// Only integer arithmetic (splitmix64), so every machine and compiler draws
// the same numbers; std::*_distribution is implementation-defined and unused.
#pragma once

#include <cstdint>
#include <string_view>

namespace bitlens::train::data {

// The splitmix64 finalizer: a bijective 64-bit mix (Steele, Lea, Flood 2014).
inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// FNV-1a over bytes, then mixed: a stable hash of text (scene descriptions).
inline uint64_t HashText(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return Mix64(h);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    state_ += 0x9e3779b97f4a7c15ull;
    return Mix64(state_);
  }
  // Uniform in [0, n), n >= 1, without modulo bias (rejects the short tail).
  int Uniform(int n) {
    const uint64_t un = static_cast<uint64_t>(n);
    const uint64_t limit = UINT64_MAX - (UINT64_MAX % un);
    uint64_t x = Next();
    while (x >= limit) x = Next();
    return static_cast<int>(x % un);
  }
  // Uniform in [lo, hi] inclusive.
  int Range(int lo, int hi) { return lo + Uniform(hi - lo + 1); }
  // True with probability num/den.
  bool Chance(int num, int den) { return Uniform(den) < num; }

 private:
  uint64_t state_;
};

}  // namespace bitlens::train::data
