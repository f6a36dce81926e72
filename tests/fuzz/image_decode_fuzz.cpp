// Fuzz target: decoding arbitrary bytes as PNG/JPEG and preprocessing the
// result must give an image or a clean Status, never a crash, an
// out-of-bounds access or an unbounded allocation.
#include <cstddef>
#include <cstdint>

#include "vision/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto image = bitlens::DecodeImageMemory(data, size, "fuzz");
  if (!image.ok()) return 0;
  const size_t expected = static_cast<size_t>(image->width) * image->height * 3;
  if (image->width <= 0 || image->height <= 0 || image->rgb.size() != expected) __builtin_trap();

  // A CLIP-style (shortest edge + center crop, bicubic) and a SigLIP-style
  // (fixed size, bilinear) pipeline, small so that each input stays fast.
  bitlens::ImageProcessorConfig clip;
  clip.shortest_edge = 24;
  clip.do_center_crop = true;
  clip.crop_height = clip.crop_width = 24;
  bitlens::ImageProcessorConfig siglip;
  siglip.processor_type = "SiglipImageProcessor";
  siglip.resize_height = 16;
  siglip.resize_width = 20;
  siglip.resample = 2;
  for (const auto* config : {&clip, &siglip}) {
    auto pixel_values = bitlens::PreprocessImage(*image, *config);
    if (pixel_values.ok() && pixel_values->numel() == 0) __builtin_trap();
  }
  return 0;
}
