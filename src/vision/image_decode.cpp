// vision/image_decode: PNG and JPEG bytes -> 8-bit RGB with stb_image, made
// to agree with what transformers' convert_to_rgb produces from a PIL image:
// transparency is composited over opaque white with Pillow's integer
// alpha_composite arithmetic, greyscale is replicated, 16-bit samples are
// reduced the way Pillow's PNG decoder and convert("RGB") reduce them.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "base/mmap_file.h"
#include "vision/image.h"

// The one stb_image implementation in the library: PNG and JPEG only, no
// stdio (bytes come from a mapping), dimensions capped before allocation.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_NO_STDIO
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_MAX_DIMENSIONS 16384
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace bitlens {
namespace {

constexpr int kMaxSide = 16384;
constexpr int64_t kMaxPixels = 100'000'000;

enum class Format { kUnknown, kPng, kJpeg };

Format Sniff(const uint8_t* data, size_t size) {
  static const uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 8 && std::equal(kPng, kPng + 8, data)) return Format::kPng;
  if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff) return Format::kJpeg;
  return Format::kUnknown;
}

std::string FirstBytes(const uint8_t* data, size_t size) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < size && i < 8; ++i) {
    std::snprintf(buf, sizeof(buf), i ? " %02x" : "%02x", data[i]);
    out += buf;
  }
  return out;
}

// Walks the JPEG marker structure from SOI to EOI. Pillow refuses a JPEG
// whose data ends before EOI ("image file is truncated"); stb would instead
// return an image with the missing part filled in, so the check is ours.
bool JpegReachesEoi(const uint8_t* d, size_t n) {
  size_t i = 2;  // after SOI
  while (i + 1 < n) {
    if (d[i] != 0xff) { ++i; continue; }  // stray bytes before a marker: libjpeg skips them too
    uint8_t m = d[i + 1];
    if (m == 0xff) { ++i; continue; }  // fill byte
    i += 2;
    if (m == 0xd9) return true;  // EOI
    if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) continue;  // no length
    if (i + 1 >= n) return false;
    const size_t len = (static_cast<size_t>(d[i]) << 8) | d[i + 1];
    if (len < 2 || i + len > n) return false;
    i += len;
    if (m == 0xda) {
      // Entropy-coded data: ends at the first 0xff not followed by 0x00 (a
      // stuffed byte) or a restart marker.
      while (i + 1 < n) {
        if (d[i] == 0xff && d[i + 1] != 0x00 && !(d[i + 1] >= 0xd0 && d[i + 1] <= 0xd7)) break;
        ++i;
      }
    }
  }
  return false;
}

// Pillow's alpha_composite of (r, g, b, a) over opaque white, then drop alpha
// (what transformers' convert_to_rgb does for images with transparency).
// With the background opaque, Pillow's coefficients reduce exactly to
// coef1 = 128 * a and coef2 = 128 * (255 - a) (7 extra bits), and the
// division by 255 is its rounded shift ((t >> 8) + t) >> 8.
inline uint8_t OverWhite(uint32_t c, uint32_t a) {
  if (a == 0) return 255;
  const uint32_t coef1 = a * 255 * 255 * 128 / (255 * 255);
  const uint32_t coef2 = 255 * 128 - coef1;
  const uint32_t t = c * coef1 + 255 * coef2 + (0x80 << 7);
  return static_cast<uint8_t>((((t >> 8) + t) >> 8) >> 7);
}

std::string StbReason() {
  const char* r = stbi_failure_reason();
  return r ? r : "unknown error";
}

}  // namespace

Result<Image> DecodeImageMemory(const uint8_t* data, size_t size, const std::string& source) {
  if (size == 0 || data == nullptr) {
    return InvalidArgument(source + ": not a PNG or JPEG image (the file is empty)");
  }
  const Format format = Sniff(data, size);
  if (format == Format::kUnknown) {
    return InvalidArgument(source + ": not a PNG or JPEG image (starts with bytes " + FirstBytes(data, size) + ")");
  }
  const char* kind = format == Format::kPng ? "PNG" : "JPEG";
  if (size > static_cast<size_t>(INT32_MAX)) {
    return InvalidArgument(source + ": " + kind + " file larger than 2 GiB");
  }
  const int len = static_cast<int>(size);

  // Header first: reject absurd dimensions before stb allocates anything.
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &comp)) {
    return InvalidArgument(source + ": corrupt or unsupported " + kind + " header (" + StbReason() + ")");
  }
  if (w <= 0 || h <= 0 || w > kMaxSide || h > kMaxSide || static_cast<int64_t>(w) * h > kMaxPixels) {
    return InvalidArgument(source + ": " + kind + " declares " + std::to_string(w) + "x" + std::to_string(h) +
                           " pixels; images up to " + std::to_string(kMaxSide) + " per side and " +
                           std::to_string(kMaxPixels / 1'000'000) + " megapixels are accepted");
  }
  if (format == Format::kJpeg && !JpegReachesEoi(data, size)) {
    return InvalidArgument(source + ": truncated JPEG (the data ends before the end-of-image marker)");
  }

  Image image;
  image.width = w;
  image.height = h;
  image.rgb.resize(static_cast<size_t>(w) * h * 3);
  const size_t pixels = static_cast<size_t>(w) * h;

  if (format == Format::kPng && comp == 1 && stbi_is_16_bit_from_memory(data, len)) {
    // 16-bit greyscale opens in Pillow as mode "I;16", and its conversion to
    // RGB saturates at 255 instead of keeping the high byte.
    int w2, h2, c2;
    stbi_us* px = stbi_load_16_from_memory(data, len, &w2, &h2, &c2, 1);
    if (px == nullptr) {
      return InvalidArgument(source + ": corrupt PNG (" + StbReason() + ")");
    }
    for (size_t i = 0; i < pixels; ++i) {
      const uint8_t v = px[i] > 255 ? 255 : static_cast<uint8_t>(px[i]);
      image.rgb[3 * i] = image.rgb[3 * i + 1] = image.rgb[3 * i + 2] = v;
    }
    stbi_image_free(px);
    return image;
  }

  // PNG is asked for RGBA so that every form of transparency (alpha channel,
  // tRNS colour key, palette alpha) arrives as an alpha byte; compositing an
  // opaque pixel over white is the identity, so opaque images are unchanged.
  // stb reduces other 16-bit PNGs to their high byte, as Pillow's
  // "RGB;16B"/"RGBA;16B"/"LA;16B" unpackers do.
  const int want = format == Format::kPng ? 4 : 3;
  int w2, h2, c2;
  stbi_uc* px = stbi_load_from_memory(data, len, &w2, &h2, &c2, want);
  if (px == nullptr) {
    return InvalidArgument(source + ": corrupt " + std::string(kind) + " (" + StbReason() + ")");
  }
  if (w2 != w || h2 != h) {
    stbi_image_free(px);
    return InvalidArgument(source + ": " + kind + " header and image data disagree on the size");
  }
  if (want == 3) {
    std::copy(px, px + pixels * 3, image.rgb.begin());
  } else {
    for (size_t i = 0; i < pixels; ++i) {
      const uint8_t* p = px + 4 * i;
      uint8_t* o = &image.rgb[3 * i];
      if (p[3] == 255) {
        o[0] = p[0], o[1] = p[1], o[2] = p[2];
      } else {
        o[0] = OverWhite(p[0], p[3]);
        o[1] = OverWhite(p[1], p[3]);
        o[2] = OverWhite(p[2], p[3]);
      }
    }
  }
  stbi_image_free(px);
  return image;
}

Result<Image> DecodeImageFile(const std::string& path) {
  BL_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  return DecodeImageMemory(file->data(), file->size(), path);
}

}  // namespace bitlens
