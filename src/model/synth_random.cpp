// model/synth_random: SplitMix64 stream + polar-method normals.
#include "model/synth_random.h"

#include <cmath>

namespace bitlens {
namespace {

uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

}  // namespace

NormalStream::NormalStream(uint64_t seed, std::string_view tensor_name)
    : state_(Mix(seed ^ Mix(Fnv1a(tensor_name)))) {}

uint64_t NormalStream::Next() {
  state_ += 0x9e3779b97f4a7c15ull;
  return Mix(state_);
}

void NormalStream::Fill(float* out, size_t n, float stddev) {
  size_t i = 0;
  if (has_spare_ && n > 0) {
    out[i++] = spare_ * stddev;
    has_spare_ = false;
  }
  constexpr double kScale = 1.0 / 4294967296.0;  // 2^-32
  while (i < n) {
    // Two uniforms in (-1, 1) from one 64-bit draw; keep points inside the unit disc.
    const uint64_t r = Next();
    const double u = (static_cast<double>(r >> 32) + 0.5) * kScale * 2.0 - 1.0;
    const double v = (static_cast<double>(r & 0xffffffffu) + 0.5) * kScale * 2.0 - 1.0;
    const double s = u * u + v * v;
    if (s >= 1.0 || s == 0.0) continue;
    const double m = std::sqrt(-2.0 * std::log(s) / s);
    out[i++] = static_cast<float>(u * m) * stddev;
    if (i < n) {
      out[i++] = static_cast<float>(v * m) * stddev;
    } else {
      spare_ = static_cast<float>(v * m);
      has_spare_ = true;
    }
  }
}

}  // namespace bitlens
