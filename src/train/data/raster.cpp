// train/data/raster: coverage by 4x4 samples per pixel, integer blending.
#include "train/data/raster.h"

#include <algorithm>

namespace bitlens::train::data {

bool Primitive::Contains(int64_t x, int64_t y) const {
  switch (type) {
    case kRect:
      return x >= x0 && x <= x1 && y >= y0 && y <= y1;
    case kEllipse: {  // (dx/rx)^2 + (dy/ry)^2 <= 1, multiplied out
      const int64_t dx = x - cx, dy = y - cy;
      return dx * dx * ry * ry + dy * dy * rx * rx <= rx * rx * ry * ry;
    }
    case kAnnulus: {
      const int64_t dx = x - cx, dy = y - cy, d2 = dx * dx + dy * dy;
      return d2 <= rx * rx && d2 > r_in * r_in;
    }
    case kPolygon: {  // crossing number of a ray towards +x
      bool inside = false;
      const size_t n = points.size();
      for (size_t i = 0, j = n - 1; i < n; j = i++) {
        const SubPoint& a = points[i];
        const SubPoint& b = points[j];
        if ((a.y > y) == (b.y > y)) continue;
        // x < a.x + (y - a.y) * (b.x - a.x) / (b.y - a.y), without division
        const int64_t lhs = (x - a.x) * (b.y - a.y);
        const int64_t rhs = (y - a.y) * (b.x - a.x);
        if (b.y > a.y ? lhs < rhs : lhs > rhs) inside = !inside;
      }
      return inside;
    }
  }
  return false;
}

bool Silhouette::Contains(int64_t x, int64_t y) const {
  bool in = false;
  for (const Primitive& p : parts) {
    if (!p.hole && !in) in = p.Contains(x, y);
  }
  if (!in) return false;
  for (const Primitive& p : parts) {
    if (p.hole && p.Contains(x, y)) return false;
  }
  return true;
}

bool PatternOn(int pattern, int lx, int ly, int image_size) {
  switch (pattern) {
    case kStriped: {  // horizontal bands
      const int w = std::max(1, image_size / 32);
      return (ly / w) % 2 == 0;
    }
    case kDotted: {  // small square dots of the shade on a regular pitch
      const int pitch = std::max(3, image_size * 4 / 64);
      const int dot = std::max(1, image_size / 32);
      return !((lx % pitch) >= pitch - dot && (ly % pitch) >= pitch - dot);
    }
    case kCheckered: {
      const int c = std::max(1, image_size * 3 / 64);
      return ((lx / c) + (ly / c)) % 2 == 0;
    }
    default:
      return true;
  }
}

Canvas::Canvas(int size) {
  image_.width = size;
  image_.height = size;
  image_.rgb.assign(static_cast<size_t>(size) * size * 3, 0);
}

void Canvas::FillBackdrop(const Backdrop& backdrop) {
  const Rgb tone = BackgroundRgb(backdrop.tone);
  const int size = image_.width;
  Rng rng(backdrop.texture_seed);
  for (int y = 0; y < size; ++y) {
    // Textured: a faint vertical gradient (+-5) and grey noise (+-6).
    const int gradient = backdrop.textured ? (y * 10) / std::max(1, size - 1) - 5 : 0;
    for (int x = 0; x < size; ++x) {
      const int noise = backdrop.textured ? rng.Uniform(13) - 6 : 0;
      uint8_t* px = &image_.rgb[(static_cast<size_t>(y) * size + x) * 3];
      px[0] = static_cast<uint8_t>(std::clamp(tone.r + gradient + noise, 0, 255));
      px[1] = static_cast<uint8_t>(std::clamp(tone.g + gradient + noise, 0, 255));
      px[2] = static_cast<uint8_t>(std::clamp(tone.b + gradient + noise, 0, 255));
    }
  }
}

void Canvas::Draw(const Silhouette& shape, int color, int pattern) {
  const int size = image_.width;
  const Rgb on = ColorRgb(color), off = ColorShade(color);
  const int px0 = static_cast<int>(std::max<int64_t>(0, shape.min_x / kSub));
  const int py0 = static_cast<int>(std::max<int64_t>(0, shape.min_y / kSub));
  const int px1 = static_cast<int>(std::min<int64_t>(size - 1, shape.max_x / kSub));
  const int py1 = static_cast<int>(std::min<int64_t>(size - 1, shape.max_y / kSub));
  for (int py = py0; py <= py1; ++py) {
    for (int px = px0; px <= px1; ++px) {
      int coverage = 0;  // of 16 samples at (2, 6, 10, 14)/16 of the pixel
      for (int sy = 0; sy < 4; ++sy) {
        for (int sx = 0; sx < 4; ++sx) {
          coverage += shape.Contains(px * kSub + 2 + 4 * sx, py * kSub + 2 + 4 * sy);
        }
      }
      if (coverage == 0) continue;
      const Rgb c = PatternOn(pattern, px - px0, py - py0, size) ? on : off;
      uint8_t* d = &image_.rgb[(static_cast<size_t>(py) * size + px) * 3];
      d[0] = static_cast<uint8_t>((c.r * coverage + d[0] * (16 - coverage) + 8) / 16);
      d[1] = static_cast<uint8_t>((c.g * coverage + d[1] * (16 - coverage) + 8) / 16);
      d[2] = static_cast<uint8_t>((c.b * coverage + d[2] * (16 - coverage) + 8) / 16);
    }
  }
}

}  // namespace bitlens::train::data
