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
// Asymmetric group blocks: w ≈ min + scale * q, q in [0, 2^bits - 1], scale and
// min as IEEE f16. Packing interleaves so that one shift-and-mask over a run of
// bytes yields a contiguous run of weights:
//   2-bit, group g: weight i sits in byte i % (g/4) at bit 2 * (i / (g/4)).
//   4-bit, group g: weight i sits in byte i % (g/2), low nibble for i < g/2.
struct BlockW2G32 { uint16_t scale; uint16_t min; uint8_t q[8]; };
static_assert(sizeof(BlockW2G32) == 12);   // 96 bits / 32 weights = 3.0 bpw
struct BlockW2G64 { uint16_t scale; uint16_t min; uint8_t q[16]; };
static_assert(sizeof(BlockW2G64) == 20);   // 160 / 64 = 2.5 bpw
struct BlockW2G128 { uint16_t scale; uint16_t min; uint8_t q[32]; };
static_assert(sizeof(BlockW2G128) == 36);  // 288 / 128 = 2.25 bpw
struct BlockW4G32 { uint16_t scale; uint16_t min; uint8_t q[16]; };
static_assert(sizeof(BlockW4G32) == 20);   // 160 / 32 = 5.0 bpw
struct BlockW4G64 { uint16_t scale; uint16_t min; uint8_t q[32]; };
static_assert(sizeof(BlockW4G64) == 36);   // 288 / 64 = 4.5 bpw
// Symmetric "stretched" 2-bit groups (ParetoQ / PARQ grid): w ≈ scale * (q - 1.5),
// i.e. {-1.5, -0.5, 0.5, 1.5} * scale, f16 scale only, same code interleave as
// above. As torchao int2: code c = q - 2 with a float zero point of -0.5.
struct BlockW2SG32 { uint16_t scale; uint8_t q[8]; };
static_assert(sizeof(BlockW2SG32) == 10);  // 80 / 32 = 2.5 bpw
struct BlockW2SG64 { uint16_t scale; uint8_t q[16]; };
static_assert(sizeof(BlockW2SG64) == 18);  // 144 / 64 = 2.25 bpw
// w8 per output channel: each row is an f32 scale then k int8 values
// (symmetric, w ≈ scale * q, q in [-127, 127]); 8 + 32/k bpw.
struct RowHeaderW8 { float scale; };
static_assert(sizeof(RowHeaderW8) == 4);
// Passthrough: one 16-bit value per weight, no scales.
struct BlockF16 { uint16_t value; };
static_assert(sizeof(BlockF16) == 2);

enum class ScaleEncoding {
  kNone,            // f16 / bf16 passthrough
  kF16ScaleMin,     // per group: f16 scale, f16 min (asymmetric)
  kF16ScaleStretched,  // per group: f16 scale, grid {-1.5, -0.5, 0.5, 1.5} * scale
  kF32ScalePerRow,  // per row: f32 scale (symmetric)
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
  int bits;                 // bits per stored code (16 for passthrough)
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
