// train/data/png_write: writes an 8-bit RGB image as a PNG file (stb_image_write).
#pragma once

#include <string>

#include "base/status.h"
#include "vision/image.h"

namespace bitlens::train::data {

// The same image always gives the same bytes (stb's own deflate, no timestamps).
// Encoding is thread-safe.
Result<std::string> EncodePng(const Image& image);
Status WritePng(const Image& image, const std::string& path);
// Writes `bytes` to `path` (IoError naming the path on failure).
Status WriteFileBytes(const std::string& path, const std::string& bytes);

}  // namespace bitlens::train::data
