// train/data/png_write: the one stb_image_write implementation in the library
// (PNG only is used; stb_image's decoder lives in vision/image_decode.cpp).
#include "train/data/png_write.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include <cstdio>
#include <string>

namespace bitlens::train::data {
namespace {

void AppendBytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

}  // namespace

Result<std::string> EncodePng(const Image& image) {
  if (image.width <= 0 || image.height <= 0 ||
      image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return Internal("image buffer does not match its " + std::to_string(image.width) + "x" +
                    std::to_string(image.height) + " size");
  }
  std::string bytes;
  if (!stbi_write_png_to_func(AppendBytes, &bytes, image.width, image.height, 3, image.rgb.data(), image.width * 3)) {
    return Internal("PNG encoding failed");
  }
  return bytes;
}

Status WriteFileBytes(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return IoError(path + ": cannot open for writing");
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok) return IoError(path + ": write failed (disk full?)");
  return Status::Ok();
}

Status WritePng(const Image& image, const std::string& path) {
  auto bytes = EncodePng(image);
  if (!bytes.ok()) return bytes.status().WithContext(path);
  return WriteFileBytes(path, *bytes);
}

}  // namespace bitlens::train::data
