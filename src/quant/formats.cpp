// quant/formats: the table itself. Adding a format means one struct in
// formats.h, one row here and, if its encoding is new, one pair of row functions.
#include "quant/formats.h"

#include <string>

#include "quant/qmatmul_ref.h"
#include "quant/rtn.h"

namespace bitlens::quant {
namespace {

constexpr float kF16Max = 65504.0f;
constexpr float kF32Max = 3.4028234e38f;
// Double quantization rounds its f16 factors outward, and a min's range
// factor spans up to twice max|w|: keep well inside f16.
constexpr float kDqMax = 16384.0f;

// Hand-written bpw values; the unit test checks them against bytes written.
constexpr FormatInfo kFormats[] = {
    {"w2g32", 2, 32, 32, sizeof(BlockW2G32), 0, 3.0, ScaleEncoding::kF16ScaleMin, kF16Max,
     "per 32 weights: f16 scale, f16 min, 8 bytes of 2-bit codes", QuantizeRowGridRef,
     DequantizeRowGroupAsymRef, VecDotGroupAsymRef},
    {"w2g64", 2, 64, 64, sizeof(BlockW2G64), 0, 2.5, ScaleEncoding::kF16ScaleMin, kF16Max,
     "per 64 weights: f16 scale, f16 min, 16 bytes of 2-bit codes", QuantizeRowGridRef,
     DequantizeRowGroupAsymRef, VecDotGroupAsymRef},
    {"w2g128", 2, 128, 128, sizeof(BlockW2G128), 0, 2.25, ScaleEncoding::kF16ScaleMin, kF16Max,
     "per 128 weights: f16 scale, f16 min, 32 bytes of 2-bit codes", QuantizeRowGridRef,
     DequantizeRowGroupAsymRef, VecDotGroupAsymRef},
    {"w2g32dq", 2, 32, 256, sizeof(BlockW2G32DQ), 0, 2.4375, ScaleEncoding::kDoubleQuantScaleMin,
     kDqMax,
     "per 256 weights: f16 d, m0, dm; per 32: 4-bit scale and min codes; 64 bytes of 2-bit codes",
     QuantizeRowGridRef, DequantizeRowDqRef, VecDotDqRef},
    {"w2g64dq", 2, 64, 256, sizeof(BlockW2G64DQ), 0, 2.3125, ScaleEncoding::kDoubleQuantScaleMin,
     kDqMax,
     "per 256 weights: f16 d, m0, dm; per 64: 4-bit scale and min codes; 64 bytes of 2-bit codes",
     QuantizeRowGridRef, DequantizeRowDqRef, VecDotDqRef},
    {"w2sg32", 2, 32, 32, sizeof(BlockW2SG32), 0, 2.5, ScaleEncoding::kF16ScaleStretched, kF16Max,
     "per 32 weights: f16 scale, 8 bytes of 2-bit codes on {-1.5,-0.5,0.5,1.5}*scale",
     QuantizeRowGridRef, DequantizeRowSymmetricRef, VecDotSymmetricRef},
    {"w2sg64", 2, 64, 64, sizeof(BlockW2SG64), 0, 2.25, ScaleEncoding::kF16ScaleStretched, kF16Max,
     "per 64 weights: f16 scale, 16 bytes of 2-bit codes on {-1.5,-0.5,0.5,1.5}*scale",
     QuantizeRowGridRef, DequantizeRowSymmetricRef, VecDotSymmetricRef},
    {"t1", 2, 256, 256, sizeof(BlockT1), 0, 1.6875, ScaleEncoding::kF16ScaleTernary, kF16Max,
     "per 256 weights: f16 scale, 52 bytes of trits {-1,0,1}*scale (5 per byte, 4 in the last 4)",
     QuantizeRowGridRef, DequantizeRowSymmetricRef, VecDotSymmetricRef},
    {"w3g32", 3, 32, 32, sizeof(BlockW3G32), 0, 4.0, ScaleEncoding::kF16ScaleMin, kF16Max,
     "per 32 weights: f16 scale, f16 min, 8 bytes of low 2 bits, 4 bytes of high bits",
     QuantizeRowGridRef, DequantizeRowGroupAsymRef, VecDotGroupAsymRef},
    {"w3g64", 3, 64, 64, sizeof(BlockW3G64), 0, 3.5, ScaleEncoding::kF16ScaleMin, kF16Max,
     "per 64 weights: f16 scale, f16 min, 16 bytes of low 2 bits, 8 bytes of high bits",
     QuantizeRowGridRef, DequantizeRowGroupAsymRef, VecDotGroupAsymRef},
    {"w4g32", 4, 32, 32, sizeof(BlockW4G32), 0, 5.0, ScaleEncoding::kF16ScaleMin, kF16Max,
     "per 32 weights: f16 scale, f16 min, 16 bytes of 4-bit codes", QuantizeRowGridRef,
     DequantizeRowGroupAsymRef, VecDotGroupAsymRef},
    {"w4g64", 4, 64, 64, sizeof(BlockW4G64), 0, 4.5, ScaleEncoding::kF16ScaleMin, kF16Max,
     "per 64 weights: f16 scale, f16 min, 32 bytes of 4-bit codes", QuantizeRowGridRef,
     DequantizeRowGroupAsymRef, VecDotGroupAsymRef},
    {"w8", 8, 0, 1, 1, sizeof(RowHeaderW8), 8.0, ScaleEncoding::kF32ScalePerRow, kF32Max,
     "per row: f32 scale, then k int8 codes (symmetric, [-127, 127])", QuantizeRowGridRef,
     DequantizeRowW8Ref, VecDotW8Ref},
    {"f16", 16, 0, 1, sizeof(BlockF16), 0, 16.0, ScaleEncoding::kNone, kF16Max,
     "IEEE half per weight", QuantizeRowF16Ref, DequantizeRowF16Ref, VecDotF16Ref},
    {"bf16", 16, 0, 1, sizeof(BlockF16), 0, 16.0, ScaleEncoding::kNone, kF32Max,
     "bfloat16 per weight", QuantizeRowBf16Ref, DequantizeRowBf16Ref, VecDotBf16Ref},
};

}  // namespace

std::span<const FormatInfo> AllFormats() { return kFormats; }

Result<const FormatInfo*> FindFormat(std::string_view name) {
  std::string known;
  for (const FormatInfo& f : kFormats) {
    if (name == f.name) return &f;
    known += known.empty() ? "" : ", ";
    known += f.name;
  }
  return NotFound("unknown weight format '" + std::string(name) + "' (known: " + known + ")");
}

// Ragged k: the last block may be partial; it is stored whole, its codes past
// k are 0 and its grid comes from its valid weights only.
size_t RowBytes(const FormatInfo& f, int64_t k) {
  const int64_t blocks = (k + f.block_weights - 1) / f.block_weights;
  return static_cast<size_t>(f.row_header_bytes) +
         static_cast<size_t>(blocks) * static_cast<size_t>(f.block_bytes);
}

// Counts the padding of a partial last block, so it is what a row really costs.
double BitsPerWeight(const FormatInfo& f, int64_t k) {
  return 8.0 * static_cast<double>(RowBytes(f, k)) / static_cast<double>(k);
}

Status CheckRowLength(const FormatInfo& f, int64_t k) {
  if (k <= 0) {
    return InvalidArgument(std::string(f.name) + ": rows need at least one weight, got k=" +
                           std::to_string(k));
  }
  // Far beyond any model, and keeps every per-row index and byte count in range.
  constexpr int64_t kMaxRowLength = int64_t{1} << 31;
  if (k > kMaxRowLength) {
    return InvalidArgument(std::string(f.name) + ": k=" + std::to_string(k) +
                           " weights per row is more than the supported 2^31");
  }
  return Status::Ok();
}

}  // namespace bitlens::quant
