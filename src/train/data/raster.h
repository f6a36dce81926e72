// train/data/raster: integer rasterization of filled silhouettes (unions of
// rectangles, ellipses, annuli and polygons, minus holes) with 4x4
// supersampled coverage, fill patterns and backdrops. Integer-only geometry
// keeps every pixel identical on every machine (no FMA or rounding drift).
#pragma once

#include <cstdint>
#include <vector>

#include "train/data/sample_spec.h"
#include "train/data/vocab.h"
#include "vision/image.h"

namespace bitlens::train::data {

inline constexpr int64_t kSub = 16;  // geometry is in 1/16 pixel units

struct SubPoint {
  int64_t x = 0, y = 0;
};

struct Primitive {
  enum Type { kRect, kEllipse, kAnnulus, kPolygon };
  Type type = kRect;
  bool hole = false;                // removed from the union of the other parts
  int64_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // kRect: inclusive bounds
  int64_t cx = 0, cy = 0, rx = 0, ry = 0;  // kEllipse; kAnnulus uses rx as the outer radius
  int64_t r_in = 0;                 // kAnnulus inner radius
  std::vector<SubPoint> points;     // kPolygon (any simple polygon; even-odd rule)
  bool Contains(int64_t x, int64_t y) const;
};

struct Silhouette {
  std::vector<Primitive> parts;
  int64_t min_x = 0, min_y = 0, max_x = 0, max_y = 0;  // bounding box, subpixel units
  bool Contains(int64_t x, int64_t y) const;
};

// Pixel of a patterned fill at (lx, ly) pixels from the fill's origin: true
// for the colour itself, false for its shade. Feature sizes scale with the
// image (2-3 px at 64 px).
bool PatternOn(int pattern, int lx, int ly, int image_size);

class Canvas {
 public:
  explicit Canvas(int size);
  void FillBackdrop(const Backdrop& backdrop);
  // Draws `shape` filled with `color` in `pattern`; the pattern starts at the
  // silhouette's top-left pixel so it moves with the object.
  void Draw(const Silhouette& shape, int color, int pattern);
  Image Take() { return std::move(image_); }

 private:
  Image image_;
};

}  // namespace bitlens::train::data
