// kernels/qmatmul_lut_kind: which table kernel reads a format's blocks, chosen
// from the table entry's properties (bits, group, scale encoding, block size).
#pragma once

#include "quant/formats.h"

namespace bitlens::kernels::lut {

enum class Kind {
  kNone,         // no table kernel
  kW2Asym,       // [f16 scale][f16 min][g/4 code bytes], g = 32, 64, 128
  kW2Stretched,  // [f16 scale][g/4 code bytes], w = scale·(q − 1.5), g = 32, 64
  kT1,           // [f16 scale][48 bytes of 5 trits][4 bytes of 4 trits], groups of 256
};

Kind KindOf(const quant::FormatInfo& f);

}  // namespace bitlens::kernels::lut
