// quant/block_codes: how codes sit inside a block (bit planes, t1's base-3
// bytes) and how a double-quantized group's grid follows from its codes. One
// definition for the encoder (quant/grid), the dequantizer and the reference
// dot products, so they cannot drift apart; layouts are documented in formats.h.
#pragma once

#include <cstdint>
#include <cstring>

#include "base/f16.h"

namespace bitlens::quant {

// ---- Bit planes: weight i of a block of bw weights sits in byte i % P of a
// plane of P = bw·b/8 bytes at bit b·(i / P). 3-bit codes are a 2-bit plane
// (bits 0-1) followed by a 1-bit plane (bit 2); other widths are one plane.

// The code of weight i (< bw) of the planes at `planes`.
inline int PlaneCode(const uint8_t* planes, int bw, int bits, int i) {
  if (bits == 3) {
    const int lo_bytes = bw / 4, hi_bytes = bw / 8;
    return ((planes[i % lo_bytes] >> (2 * (i / lo_bytes))) & 3) |
           (((planes[lo_bytes + i % hi_bytes] >> (i / hi_bytes)) & 1) << 2);
  }
  const int bytes = bw * bits / 8;
  return (planes[i % bytes] >> (bits * (i / bytes))) & ((1 << bits) - 1);
}

// Writes all bw·bits/8 plane bytes from codes[0, valid); codes past valid are 0.
inline void PackPlanes(const uint8_t* codes, int valid, int bw, int bits, uint8_t* planes) {
  std::memset(planes, 0, static_cast<size_t>(bw * bits / 8));
  auto put = [&](int plane_bits, int code_shift, uint8_t* plane) {
    const int bytes = bw * plane_bits / 8, mask = (1 << plane_bits) - 1;
    for (int i = 0; i < valid; ++i) {
      plane[i % bytes] |= static_cast<uint8_t>(((codes[i] >> code_shift) & mask)
                                               << (plane_bits * (i / bytes)));
    }
  };
  if (bits == 3) {
    put(2, 0, planes);
    put(1, 2, planes + bw / 4);
  } else {
    put(bits, 0, planes);
  }
}

// ---- t1 trits: a byte holding D base-3 digits t_0..t_{D-1} (t_0 most
// significant) stores ceil(256·v / 3^D), v = Σ t_p·3^(D-1-p). Multiplying the
// byte by 3^p (mod 256) moves digit p to the top, where ·3 >> 8 reads it.
constexpr int kT1Block = 256, kT1Bytes5 = 48, kT1Bytes4 = 4;  // 48·5 + 4·4 = 256 trits

inline int TritAt(uint8_t byte, int p) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const uint8_t top = static_cast<uint8_t>(byte * kPow3[p]);
  return (top * 3) >> 8;
}

inline uint8_t PackTrits(const uint8_t* t, int digits) {
  int v = 0, pow = 1;
  for (int p = 0; p < digits; ++p) v = 3 * v + t[p], pow *= 3;
  return static_cast<uint8_t>((256 * v + pow - 1) / pow);
}

// Trit of weight i (< 256) of a t1 block's 52 code bytes.
inline int TernaryCode(const uint8_t* trits, int i) {
  if (i < kT1Bytes5 * 5) return TritAt(trits[i % kT1Bytes5], i / kT1Bytes5);
  i -= kT1Bytes5 * 5;
  return TritAt(trits[kT1Bytes5 + i % kT1Bytes4], i / kT1Bytes4);
}

// Writes all 52 code bytes from codes[0, valid) (each 0, 1 or 2); past valid 0.
inline void PackTernary(const uint8_t* codes, int valid, uint8_t* trits) {
  auto code = [&](int i) -> uint8_t { return i < valid ? codes[i] : 0; };
  uint8_t digits[5];
  for (int b = 0; b < kT1Bytes5; ++b) {
    for (int p = 0; p < 5; ++p) digits[p] = code(b + kT1Bytes5 * p);
    trits[b] = PackTrits(digits, 5);
  }
  for (int b = 0; b < kT1Bytes4; ++b) {
    for (int p = 0; p < 4; ++p) digits[p] = code(kT1Bytes5 * 5 + b + kT1Bytes4 * p);
    trits[kT1Bytes5 + b] = PackTrits(digits, 4);
  }
}

// Scale-only blocks ([f16 scale][codes]) read as w = scale · c with the code
// centred: c = q − 1.5 for the stretched 2-bit grid (a plane of bw weights),
// c = t − 1 for ternary. Exact in f32.
inline float CenteredCode(bool ternary, const uint8_t* codes, int bw, int i) {
  return ternary ? static_cast<float>(TernaryCode(codes, i) - 1)
                 : static_cast<float>(PlaneCode(codes, bw, 2, i)) - 1.5f;
}

// ---- Double-quantized super-blocks: [f16 d][f16 m0][f16 dm][groups bytes of
// sc | mc << 4][64 bytes: one 2-bit plane over 256 weights].
constexpr int kDqBlock = 256, kDqHeaderBytes = 6;

// Group j's grid, in exactly the f32 operations every reader repeats:
// scale = d·sc (exact), offset = m0 + dm·mc.
struct DqGroup {
  float scale;
  float offset;
};
inline DqGroup DqGroupAt(const uint8_t* block, int j) {
  uint16_t h[3];
  std::memcpy(h, block, 6);
  const uint8_t sm = block[kDqHeaderBytes + j];
  return {F16ToF32(h[0]) * static_cast<float>(sm & 15),
          F16ToF32(h[1]) + F16ToF32(h[2]) * static_cast<float>(sm >> 4)};
}

}  // namespace bitlens::quant
