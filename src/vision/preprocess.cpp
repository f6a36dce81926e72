// vision/preprocess: the steps of transformers' PIL-backend image processors
// in their order — resize (PIL), center crop, rescale, normalize — producing
// pixel_values [3, H, W] float32 with the same float rounding as numpy.
#include <algorithm>
#include <cmath>
#include <string>

#include "vision/image.h"
#include "vision/pil_resample.h"

namespace bitlens {

Result<ImageSize> ResizeOutputSize(ImageSize input, const ImageProcessorConfig& config) {
  const int64_t height = input.height, width = input.width;
  if (height <= 0 || width <= 0) return InvalidArgument("resize: empty input image");
  if (config.shortest_edge > 0 && config.longest_edge > 0) {
    // transformers' get_size_with_aspect_ratio(image_size, shortest_edge, longest_edge).
    int64_t size = config.shortest_edge;
    const double max_size = config.longest_edge;
    const double min_orig = static_cast<double>(std::min(height, width));
    const double max_orig = static_cast<double>(std::max(height, width));
    double raw_size = 0;
    bool capped = false;
    if (max_orig / min_orig * size > max_size) {
      raw_size = max_size * min_orig / max_orig;
      size = static_cast<int64_t>(std::nearbyint(raw_size));  // Python round(): half to even
      capped = true;
    }
    int64_t oh, ow;
    if ((height <= width && height == size) || (width <= height && width == size)) {
      oh = height, ow = width;
    } else if (width < height) {
      ow = size;
      oh = capped ? static_cast<int64_t>(raw_size * height / width) : static_cast<int64_t>(static_cast<double>(size * height) / width);
    } else {
      oh = size;
      ow = capped ? static_cast<int64_t>(raw_size * width / height) : static_cast<int64_t>(static_cast<double>(size * width) / height);
    }
    if (oh <= 0 || ow <= 0) return InvalidArgument("resize: image too thin to keep its aspect ratio");
    return ImageSize{static_cast<int>(oh), static_cast<int>(ow)};
  }
  if (config.shortest_edge > 0) {
    // get_resize_output_image_size(default_to_square=False): the short side
    // becomes shortest_edge, the long side int(shortest_edge * long / short)
    // (a float division, truncated).
    const bool portrait = width <= height;
    const int64_t short_side = portrait ? width : height;
    const int64_t long_side = portrait ? height : width;
    const int64_t new_short = config.shortest_edge;
    const int64_t new_long = static_cast<int64_t>(static_cast<double>(new_short * long_side) / short_side);
    if (new_long > 16384 * 4) {
      return InvalidArgument("resize: aspect ratio " + std::to_string(width) + "x" + std::to_string(height) +
                             " gives a side of " + std::to_string(new_long) + " pixels");
    }
    return portrait ? ImageSize{static_cast<int>(new_long), static_cast<int>(new_short)}
                    : ImageSize{static_cast<int>(new_short), static_cast<int>(new_long)};
  }
  if (config.resize_height > 0 && config.resize_width > 0) {
    return ImageSize{config.resize_height, config.resize_width};
  }
  return InvalidArgument("resize: the config sets neither shortest_edge nor height and width");
}

Result<Image> ResizeAndCropImage(const Image& image, const ImageProcessorConfig& config) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return InvalidArgument("preprocess: the image is empty or its pixel buffer does not match its size");
  }
  if (config.do_center_crop && (config.crop_height <= 0 || config.crop_width <= 0)) {
    return InvalidArgument("preprocess: do_center_crop without a crop size");
  }
  if (!config.do_resize) {
    return config.do_center_crop ? CenterCropImage(image, config.crop_height, config.crop_width) : image;
  }
  BL_ASSIGN_OR_RETURN(const ImageSize size, ResizeOutputSize({image.height, image.width}, config));
  BL_ASSIGN_OR_RETURN(Image out, ResizePil(image, size.width, size.height, config.resample));
  if (config.do_center_crop) out = CenterCropImage(out, config.crop_height, config.crop_width);
  return out;
}

Tensor ImageToPixelValues(const Image& image, const ImageProcessorConfig& config) {
  const int64_t h = image.height, w = image.width, plane = h * w;
  Tensor t = Tensor::Zeros(DType::kF32, {3, h, w});
  float* out = t.mutable_data_as<float>();  // [3, H, W]
  for (int c = 0; c < 3; ++c) {
    const float mean = config.image_mean[c];
    const float std = config.image_std[c];
    for (int64_t i = 0; i < plane; ++i) {
      const uint8_t v = image.rgb[3 * i + c];
      // transformers' rescale multiplies in float64 and then casts to
      // float32; normalize subtracts and divides in float32.
      float x = config.do_rescale ? static_cast<float>(static_cast<double>(v) * config.rescale_factor)
                                  : static_cast<float>(v);
      if (config.do_normalize) x = (x - mean) / std;
      out[c * plane + i] = x;
    }
  }
  return t;
}

Result<Tensor> PreprocessImage(const Image& image, const ImageProcessorConfig& config) {
  BL_ASSIGN_OR_RETURN(const Image resized, ResizeAndCropImage(image, config));
  return ImageToPixelValues(resized, config);
}

}  // namespace bitlens
