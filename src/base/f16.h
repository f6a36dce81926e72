// base/f16: IEEE half and bfloat16 <-> float conversion, bit-exact with
// PyTorch (round to nearest even; NaN stays NaN).
#pragma once

#include <cstdint>
#include <cstring>

namespace bitlens {

inline float Bf16ToF32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t F32ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // quiet NaN
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);

// Bulk conversions (n elements).
void F16ToF32(const uint16_t* in, float* out, size_t n);
void Bf16ToF32(const uint16_t* in, float* out, size_t n);

}  // namespace bitlens
