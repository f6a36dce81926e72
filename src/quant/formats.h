// quant/formats: the one table of weight formats. Each entry gives the bits,
// the group size along the input dimension k, how scales/zeros are stored, the
// block layout and the true bits per weight; code looks formats up here by name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/status.h"

namespace bitlens::quant {

// ---- Block layouts (bytes are the on-disk and in-memory layout). ----------
// Multi-byte fields are little-endian. Every block is one row's run of
// block_weights consecutive weights; a partial last block is padded with code 0.
//
// Code planes. A block of bw weights keeps b-bit codes (or one b-bit slice of
// wider codes) in a plane of bw·b/8 bytes: weight i sits in byte i % (bw·b/8)
// at bit b·(i / (bw·b/8)). One shift-and-mask over the plane thus yields a
// contiguous run of bw·b/8 weights, which is what a SIMD kernel wants.
//   2-bit, bw = g: weight i in byte i % (g/4) at bit 2·(i / (g/4)).
//   4-bit, bw = g: weight i in byte i % (g/2), low nibble for i < g/2.
//   3-bit, bw = g: bits 0-1 in a 2-bit plane (as above), bit 2 in a 1-bit
//                  plane right after it: weight i in byte i % (g/8) at bit i / (g/8).

// Asymmetric group blocks: w = min + scale·q, q in [0, 2^bits - 1], scale and
// min as IEEE f16, then the code planes.
struct BlockW2G32 { uint16_t scale; uint16_t min; uint8_t q[8]; };
static_assert(sizeof(BlockW2G32) == 12);   // 96 bits / 32 weights = 3.0 bpw
struct BlockW2G64 { uint16_t scale; uint16_t min; uint8_t q[16]; };
static_assert(sizeof(BlockW2G64) == 20);   // 160 / 64 = 2.5 bpw
struct BlockW2G128 { uint16_t scale; uint16_t min; uint8_t q[32]; };
static_assert(sizeof(BlockW2G128) == 36);  // 288 / 128 = 2.25 bpw
struct BlockW3G32 { uint16_t scale; uint16_t min; uint8_t ql[8]; uint8_t qh[4]; };
static_assert(sizeof(BlockW3G32) == 16);   // 128 / 32 = 4.0 bpw
struct BlockW3G64 { uint16_t scale; uint16_t min; uint8_t ql[16]; uint8_t qh[8]; };
static_assert(sizeof(BlockW3G64) == 28);   // 224 / 64 = 3.5 bpw
struct BlockW4G32 { uint16_t scale; uint16_t min; uint8_t q[16]; };
static_assert(sizeof(BlockW4G32) == 20);   // 160 / 32 = 5.0 bpw
struct BlockW4G64 { uint16_t scale; uint16_t min; uint8_t q[32]; };
static_assert(sizeof(BlockW4G64) == 36);   // 288 / 64 = 4.5 bpw

// Double-quantized 2-bit super-blocks of 256 weights: groups of g weights
// whose scale and min are 4-bit codes on per-super-block f16 grids,
//   group scale  = d · sc            sc in [0, 15]
//   group min    = m0 + dm · mc      mc in [0, 15]   (either sign)
//   w            = min + scale · q   q in [0, 3]
// sm[j] holds group j's sc in bits 0-3 and mc in bits 4-7. The codes are one
// 2-bit plane over the whole super-block (weight i in byte i % 64 at bit
// 2·(i / 64)), so each group is one run of bytes at one shift: group j of 32
// is bytes 32·(j % 2) .. +31 at bit 2·(j / 2); group j of 64 is all 64 bytes
// at bit 2·j.
struct BlockW2G32DQ { uint16_t d; uint16_t m0; uint16_t dm; uint8_t sm[8]; uint8_t q[64]; };
static_assert(sizeof(BlockW2G32DQ) == 78);  // 624 / 256 = 2.4375 bpw
struct BlockW2G64DQ { uint16_t d; uint16_t m0; uint16_t dm; uint8_t sm[4]; uint8_t q[64]; };
static_assert(sizeof(BlockW2G64DQ) == 74);  // 592 / 256 = 2.3125 bpw

// Symmetric "stretched" 2-bit groups (ParetoQ / PARQ grid): w = scale·(q - 1.5),
// i.e. {-1.5, -0.5, 0.5, 1.5}·scale, f16 scale only, one 2-bit code plane. As
// torchao int2: code c = q - 2 with a float zero point of -0.5.
struct BlockW2SG32 { uint16_t scale; uint8_t q[8]; };
static_assert(sizeof(BlockW2SG32) == 10);  // 80 / 32 = 2.5 bpw
struct BlockW2SG64 { uint16_t scale; uint8_t q[16]; };
static_assert(sizeof(BlockW2SG64) == 18);  // 144 / 64 = 2.25 bpw

// Ternary: w = scale·(t - 1), trit t in {0, 1, 2}, one f16 scale per 256
// weights. Trits are base-3 digits, 5 per byte for weights 0..239 (q5) and 4
// per byte for 240..255 (q4): weight i < 240 is digit i / 48 of q5[i % 48];
// weight 240 + i is digit i / 4 of q4[i % 4]. A byte of D digits t_0..t_{D-1}
// (t_0 most significant) stores ceil(256 · Σ t_p·3^(D-1-p) / 3^D), so digit p
// decodes with 8-bit arithmetic as ((uint8_t)(byte · 3^p) · 3) >> 8.
struct BlockT1 { uint16_t scale; uint8_t q5[48]; uint8_t q4[4]; };
static_assert(sizeof(BlockT1) == 54);  // 432 / 256 = 1.6875 bpw

// ---- Per-row and passthrough formats.
// w8 per output channel: each row is an f32 scale then k int8 values
// (symmetric, w = scale·q, q in [-127, 127]); 8 + 32/k bpw.
struct RowHeaderW8 { float scale; };
static_assert(sizeof(RowHeaderW8) == 4);
// Passthrough: one 16-bit value per weight, no scales.
struct BlockF16 { uint16_t value; };
static_assert(sizeof(BlockF16) == 2);

enum class ScaleEncoding {
  kNone,               // f16 / bf16 passthrough
  kF16ScaleMin,        // per group: f16 scale, f16 min (asymmetric)
  kDoubleQuantScaleMin,  // per group: 4-bit scale and min codes on f16 super-block grids
  kF16ScaleStretched,  // per group: f16 scale, grid {-1.5, -0.5, 0.5, 1.5} * scale
  kF16ScaleTernary,    // per group: f16 scale, grid {-1, 0, 1} * scale
  kF32ScalePerRow,     // per row: f32 scale (symmetric)
};

// Whether the MSE clipping search applies (it needs a group-wise range).
enum class RangeSearch { kMinMax, kMseClip };

struct FormatInfo;
// One row of k weights -> row_bytes(k) bytes, and back. k is already checked.
using QuantizeRowFn = void (*)(const FormatInfo& f, const float* w, int64_t k, RangeSearch search,
                               uint8_t* out);
using DequantizeRowFn = void (*)(const FormatInfo& f, const uint8_t* in, int64_t k, float* out);
// Σ_i x[i] · w[i] over one packed row of k weights, read in place (ggml's vec_dot).
// Readers and the dot product use only weights i < k of a ragged row.
using VecDotRowFn = float (*)(const FormatInfo& f, const uint8_t* row, const float* x, int64_t k);

struct FormatInfo {
  const char* name;
  int bits;                 // bits per stored code (16 for passthrough; t1: 2, a trit in 1.6)
  int group_size;           // weights sharing a scale along k; 0 = the whole row
  int block_weights;        // weights per block (a partial last block is padded)
  int block_bytes;          // sizeof the block struct
  int row_header_bytes;     // per-row bytes before the blocks (w8's scale)
  double bpw;               // bits per weight of whole blocks (no row header), written by hand
  ScaleEncoding encoding;
  float max_abs_weight;     // larger inputs overflow the stored scale/min/value
  const char* layout;       // one line for docs and `inspect`
  QuantizeRowFn quantize_row_ref;
  DequantizeRowFn dequantize_row_ref;
  VecDotRowFn vec_dot_ref;  // scalar reference, quant/qmatmul_ref
};

// All formats, in table order.
std::span<const FormatInfo> AllFormats();
// NotFound listing the known names when `name` is not in the table.
Result<const FormatInfo*> FindFormat(std::string_view name);

// Bytes of one row of k weights: row header + ceil(k / block_weights) blocks.
// Any k > 0 (ragged k): a partial last block is stored whole, its codes past k
// are 0 and its grid comes from its valid weights only. k must be valid (see
// CheckRowLength).
size_t RowBytes(const FormatInfo& f, int64_t k);
// True bits per weight for rows of length k, 8 · RowBytes / k: counts every
// scale, zero, row header and the padding of a partial last block.
double BitsPerWeight(const FormatInfo& f, int64_t k);
// InvalidArgument unless 0 < k <= 2^31.
Status CheckRowLength(const FormatInfo& f, int64_t k);

}  // namespace bitlens::quant
