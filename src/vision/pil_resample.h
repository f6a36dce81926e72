// vision/pil_resample: resizing and center cropping of 8-bit RGB images with
// the exact arithmetic of Pillow's Image.resize (separable convolution, 22-bit
// fixed-point coefficients) and transformers' center_crop, so that the HF
// slow image processors are reproduced bit for bit.
#pragma once

#include "base/status.h"
#include "vision/image.h"

namespace bitlens {

// PIL's Image.Resampling numbering, which preprocessor_config.json's
// "resample" uses.
enum class PilFilter : int {
  kNearest = 0,
  kLanczos = 1,
  kBilinear = 2,
  kBicubic = 3,
  kBox = 4,
  kHamming = 5,
};

// Image.resize((width, height), resample) on an RGB image. Convolution
// filters only (lanczos, bilinear, bicubic, box, hamming); nearest is
// Unsupported. Same size returns a copy, as Pillow does.
Result<Image> ResizePil(const Image& image, int width, int height, int resample);

// transformers' image_transforms.center_crop: offsets (H - h) // 2 and
// (W - w) // 2 rounded toward -inf; an image smaller than the crop is first
// zero-padded, ceil((h - H) / 2) rows above it, likewise columns on the left.
Image CenterCropImage(const Image& image, int crop_height, int crop_width);

}  // namespace bitlens
