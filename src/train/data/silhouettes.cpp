// train/data/silhouettes: each outline is a few primitives in design units
// (one unit = half/32 of the placed half-size), so every shape keeps its
// proportions at any image size. Pieces are distinct enough to tell apart at
// 64 px: e.g. the ring's hole, the star's five points, the mug's handle.
#include "train/data/silhouettes.h"

#include <initializer_list>
#include <utility>

#include "train/data/vocab.h"

namespace bitlens::train::data {
namespace {

// Maps design units (-32..32, y down) to subpixel coordinates.
class Builder {
 public:
  Builder(int64_t cx, int64_t cy, int64_t half) : cx_(cx), cy_(cy), half_(half) {
    out_.min_x = cx - half - kSub;
    out_.min_y = cy - half - kSub;
    out_.max_x = cx + half + kSub;
    out_.max_y = cy + half + kSub;
  }
  Builder& Rect(int x0, int y0, int x1, int y1, bool hole = false) {
    Primitive p;
    p.type = Primitive::kRect;
    p.hole = hole;
    p.x0 = X(x0), p.y0 = Y(y0), p.x1 = X(x1), p.y1 = Y(y1);
    out_.parts.push_back(std::move(p));
    return *this;
  }
  Builder& Ellipse(int x, int y, int rx, int ry, bool hole = false) {
    Primitive p;
    p.type = Primitive::kEllipse;
    p.hole = hole;
    p.cx = X(x), p.cy = Y(y), p.rx = L(rx), p.ry = L(ry);
    out_.parts.push_back(std::move(p));
    return *this;
  }
  Builder& Annulus(int x, int y, int r_out, int r_in) {
    Primitive p;
    p.type = Primitive::kAnnulus;
    p.cx = X(x), p.cy = Y(y), p.rx = L(r_out), p.r_in = L(r_in);
    out_.parts.push_back(std::move(p));
    return *this;
  }
  Builder& Polygon(std::initializer_list<std::pair<int, int>> points) {
    Primitive p;
    p.type = Primitive::kPolygon;
    for (const auto& [x, y] : points) p.points.push_back({X(x), Y(y)});
    out_.parts.push_back(std::move(p));
    return *this;
  }
  Silhouette Build() { return std::move(out_); }

 private:
  int64_t L(int d) const { return d * half_ / 32; }
  int64_t X(int d) const { return cx_ + L(d); }
  int64_t Y(int d) const { return cy_ + L(d); }

  int64_t cx_, cy_, half_;
  Silhouette out_;
};

}  // namespace

Silhouette ShapeSilhouette(int shape, int64_t cx, int64_t cy, int64_t half) {
  Builder b(cx, cy, half);
  switch (shape) {
    case 0:  // circle
      b.Ellipse(0, 0, 31, 31);
      break;
    case 1:  // square (a little smaller than the circle so both look the same size)
      b.Rect(-27, -27, 27, 27);
      break;
    case 2:  // triangle, pointing up
      b.Polygon({{0, -30}, {31, 26}, {-31, 26}});
      break;
    case 3:  // five-pointed star: outer radius 32, inner 14, centred on its bounding box
      b.Polygon({{0, -29}, {8, -8}, {30, -7}, {13, 7}, {19, 29}, {0, 17}, {-19, 29}, {-13, 7}, {-30, -7}, {-8, -8}});
      break;
    case 4:  // plus-shaped cross
      b.Rect(-10, -31, 10, 31).Rect(-31, -10, 31, 10);
      break;
    default:  // ring
      b.Annulus(0, 0, 31, 16);
      break;
  }
  return b.Build();
}

Silhouette ItemSilhouette(int type, int64_t cx, int64_t cy, int64_t half) {
  Builder b(cx, cy, half);
  switch (type) {
    case 0:  // shirt: body, two sleeves, a neck opening
      b.Rect(-14, -20, 14, 28)
          .Polygon({{-14, -20}, {-31, -6}, {-24, 4}, {-14, -4}})
          .Polygon({{14, -20}, {31, -6}, {24, 4}, {14, -4}})
          .Ellipse(0, -21, 7, 5, /*hole=*/true);
      break;
    case 1:  // mug: body and a ring handle on the right
      b.Rect(-22, -20, 10, 24).Annulus(12, 2, 15, 8);
      break;
    case 2:  // bag: trapezoid body, arched handle on top
      b.Polygon({{-26, 28}, {26, 28}, {21, -4}, {-21, -4}}).Annulus(0, -4, 20, 14);
      break;
    case 3:  // hat: crown on a wide brim
      b.Polygon({{-16, 12}, {-13, -18}, {13, -18}, {16, 12}}).Ellipse(0, 14, 31, 7);
      break;
    case 4:  // shoe: ankle, vamp sloping to the toe, flat sole
      b.Polygon({{-28, -18}, {-11, -18}, {-6, -2}, {18, 4}, {29, 13}, {29, 22}, {-28, 22}});
      break;
    case 5:  // bottle: cap, neck, rounded shoulders, body
      b.Rect(-7, -31, 7, -25).Rect(-5, -26, 5, -8).Ellipse(0, -6, 14, 9).Rect(-14, -6, 14, 30);
      break;
    default:  // lamp: shade, stem, base
      b.Polygon({{-11, -30}, {11, -30}, {25, -6}, {-25, -6}}).Rect(-2, -6, 2, 24).Ellipse(0, 26, 16, 5);
      break;
  }
  return b.Build();
}

}  // namespace bitlens::train::data
