// quant/grid_dq: the double-quantized formats' side of quant/grid (internal).
// A super-block's group scales and mins become 4-bit codes on f16 grids; the
// group grids the algorithms see are the dequantized ones.
#pragma once

#include <cstdint>

#include "quant/grid.h"

namespace bitlens::quant {

// One group's asymmetric grid by min-max or the MSE clip search over
// w[0, len); every candidate passes through `round` (f16 rounding, or none
// when the result is a proposal for double quantization).
GroupGrid SearchAsymGrid(const float* w, int len, int qmax, RangeSearch search,
                         GroupGrid (*round)(GroupGrid));

// Grids of the groups of one super-block holding `len` valid weights
// (ceil(len / group_size) groups), already double-quantized.
void ChooseDqSuperBlock(const FormatInfo& f, const float* w, int len, RangeSearch search,
                        GroupGrid* grids);
// Float proposals of n groups -> the nearest storable grids, in place.
void RoundDqSuperBlock(int qmax, GroupGrid* grids, int n);

// What a super-block header stores for n grids that RoundDqSuperBlock or
// ChooseDqSuperBlock produced (their largest scale has code 15, their
// smallest and largest min codes 0 and 15, so the factors follow from them).
struct DqFactors {
  uint16_t d = 0, m0 = 0, dm = 0;  // f16
  uint8_t sm[8] = {};              // sc | mc << 4 per group
};
DqFactors FactorDqSuperBlock(const GroupGrid* grids, int n);

}  // namespace bitlens::quant
