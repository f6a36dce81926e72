// train/data/render: places a sample's objects (or its catalogue item) on the
// canvas. Scene objects sit in the centre of their 3x3 grid cell, moved by a
// jitter small enough that they never leave the cell; sizes and jitter are
// fractions of the image so any DataOptions::image_size draws the same scene.
#include "train/data/raster.h"
#include "train/data/sample_spec.h"
#include "train/data/silhouettes.h"

namespace bitlens::train::data {
namespace {

// Half-sizes as a fraction of the cell (size/3): large 0.42, small 0.32 (big
// enough that a pattern shows on a small star); maximal jitter 1/64 and 2/64
// of the image. Large: 0.42*21.3 + 1 < 10.7 px (half a cell at 64 px), so
// objects never reach a neighbouring cell.
int64_t HalfSize(int size_class, int64_t image_sub) {
  return size_class == kLarge ? image_sub * 42 / 300 : image_sub * 32 / 300;
}
int64_t MaxJitter(int size_class, int64_t image_sub) {
  return size_class == kLarge ? image_sub / 64 : image_sub * 2 / 64;
}

Image RenderScene(const SceneSpec& scene, int image_size) {
  Canvas canvas(image_size);
  canvas.FillBackdrop(scene.backdrop);
  const int64_t image_sub = image_size * kSub;
  for (const ObjectSpec& o : scene.objects) {
    const int row = o.cell / 3, col = o.cell % 3;
    const int64_t jitter = MaxJitter(o.size, image_sub);
    const int64_t cx = (2 * col + 1) * image_sub / 6 + o.jitter_x * jitter / kJitterSteps;
    const int64_t cy = (2 * row + 1) * image_sub / 6 + o.jitter_y * jitter / kJitterSteps;
    canvas.Draw(ShapeSilhouette(o.shape, cx, cy, HalfSize(o.size, image_sub)), o.color, o.pattern);
  }
  return canvas.Take();
}

// The item fills most of the image: half-size 0.36 or 0.42 of it, moved by
// up to 1/16 of the image from the centre on a coarse 3x3 grid.
Image RenderItem(const CatalogItemSpec& item, int image_size) {
  Canvas canvas(image_size);
  canvas.FillBackdrop(item.backdrop);
  const int64_t image_sub = image_size * kSub;
  const int64_t half = item.scale == 1 ? image_sub * 42 / 100 : image_sub * 36 / 100;
  const int64_t step = image_sub / 16;
  const int64_t cx = image_sub / 2 + (item.placement % 3 - 1) * step;
  const int64_t cy = image_sub / 2 + (item.placement / 3 - 1) * step;
  canvas.Draw(ItemSilhouette(item.type, cx, cy, half), item.color, item.pattern);
  return canvas.Take();
}

}  // namespace

Image RenderSampleImage(const SampleSpec& spec, int image_size) {
  return spec.is_catalog ? RenderItem(spec.item, image_size) : RenderScene(spec.scene, image_size);
}

}  // namespace bitlens::train::data
