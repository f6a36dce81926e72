// vision/image: decoding PNG/JPEG files (stb_image) into 8-bit RGB and the
// preprocessing of the Hugging Face image processors (CLIPImageProcessor,
// SiglipImageProcessor): resize with PIL's filters and rounding, center
// crop, rescale, normalize. Output is pixel_values [3, H, W] float32.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "tensor/tensor.h"

namespace bitlens {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // height * width * 3, row-major, RGB
};

// Decodes a PNG or JPEG file (RGBA is composited as PIL's convert("RGB")
// does, greyscale expanded). A file that is not an image is an
// InvalidArgument naming the path.
Result<Image> DecodeImageFile(const std::string& path);
Result<Image> DecodeImageMemory(const uint8_t* data, size_t size, const std::string& source);

// preprocessor_config.json of a checkpoint.
struct ImageProcessorConfig {
  std::string processor_type = "CLIPImageProcessor";  // or SiglipImageProcessor
  bool do_resize = true;
  int shortest_edge = 0;            // CLIP: size.shortest_edge
  int longest_edge = 0;             // size.longest_edge (with shortest_edge), 0 = none
  int resize_height = 0;            // SigLIP: size.height/width
  int resize_width = 0;
  int resample = 3;                 // PIL: 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming
  bool do_center_crop = false;
  int crop_height = 0;
  int crop_width = 0;
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  float image_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  float image_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  bool do_convert_rgb = true;
};

Result<ImageProcessorConfig> ParseImageProcessorConfig(const std::string& json_text, const std::string& source);
Result<ImageProcessorConfig> LoadImageProcessorConfig(const std::string& model_dir);

// pixel_values [3, H, W] float32, exactly as the HF processor computes them.
Result<Tensor> PreprocessImage(const Image& image, const ImageProcessorConfig& config);

// The two halves of PreprocessImage, for tests and tools: the 8-bit image
// after resize and center crop, then rescale + normalize into [3, H, W] f32.
Result<Image> ResizeAndCropImage(const Image& image, const ImageProcessorConfig& config);
Tensor ImageToPixelValues(const Image& image, const ImageProcessorConfig& config);

// Output (height, width) of the resize step for an input of (height, width),
// as transformers computes it (shortest_edge keeps the aspect ratio and
// truncates the long side; height/width is used as is).
struct ImageSize {
  int height = 0;
  int width = 0;
};
Result<ImageSize> ResizeOutputSize(ImageSize input, const ImageProcessorConfig& config);

}  // namespace bitlens
