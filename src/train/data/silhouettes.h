// train/data/silhouettes: the outlines of the scene shapes (circle, square,
// triangle, star, cross, ring) and of the catalogue items (shirt, mug, bag,
// hat, shoe, bottle, lamp), designed on a 64x64 grid (-32..32) and placed at
// a centre and half-size given in subpixel units.
#pragma once

#include <cstdint>

#include "train/data/raster.h"

namespace bitlens::train::data {

Silhouette ShapeSilhouette(int shape, int64_t cx, int64_t cy, int64_t half);
Silhouette ItemSilhouette(int type, int64_t cx, int64_t cy, int64_t half);

}  // namespace bitlens::train::data
