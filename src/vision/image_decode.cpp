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
#define STBI_MAX_DIMENSIONS (1 << 24)  // stb's own backstop; the tighter bitlens limit is checked first
// Two stb_image 2.27 defects are undefined behaviour without memory access
// out of bounds, and are exempted from UBSan in clang fuzz builds so that the
// fuzzer keeps looking for real memory errors (AddressSanitizer still
// reports those): on corrupt JPEG entropy data its bit counter goes negative
// and it then shifts by more than 31 (the hardware masks the count: garbage
// pixels; upstream 2.28 stops at "ran out of bits"), and an empty IDAT chunk
// makes it call memcpy(NULL, src, 0) (CheckPngStructure refuses the one
// case known to reach it, which also keeps GCC sanitizer builds clean).
#if defined(__clang__)
#pragma clang attribute push(__attribute__((no_sanitize("shift", "nonnull-attribute"))), apply_to = function)
#endif
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
#if defined(__clang__)
#pragma clang attribute pop
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

// Walks the JPEG marker structure from SOI to EOI and checks what stb_image
// 2.27 (Debian's) trusts without checking. Returns "" when the file is whole,
// else why not:
//  - Pillow refuses a JPEG whose data ends before EOI ("image file is
//    truncated"), while stb would fill the missing part in;
//  - a DHT table declaring more than 256 codes makes stb 2.27 write past its
//    symbol-size array (fixed upstream in 2.28), so it is refused here;
//  - a scan that selects a Huffman table no DHT has defined makes stb 2.27
//    decode with uninitialized tables (wild reads), so it is refused here
//    too. (Motion-JPEG frames that rely on the standard tables are thereby
//    unsupported.) Likewise a component whose quantization table was never
//    defined (stb would dequantize with uninitialized memory);
//  - a file whose entropy-coded data is too short for its declared size
//    (every 8x8 block of the full-resolution component costs at least one
//    bit) would make stb fill megapixels from nothing: a few hundred bytes
//    declaring 70 megapixels cost seconds. Refused as corrupt.
// `*width`/`*height` receive the frame size of the first SOF segment.
std::string CheckJpegStructure(const uint8_t* d, size_t n, int* width, int* height) {
  size_t i = 2;  // after SOI
  unsigned defined_dc = 0, defined_ac = 0, defined_q = 0;  // bit t: table id t (0..3) has been defined
  unsigned used_q = 0;                                      // quantization tables the frame's components name
  bool progressive = false;
  uint64_t entropy_bytes = 0;
  while (i + 1 < n) {
    if (d[i] != 0xff) { ++i; continue; }  // stray bytes before a marker: libjpeg skips them too
    const uint8_t m = d[i + 1];
    if (m == 0xff) { ++i; continue; }  // fill byte
    i += 2;
    if (m == 0xd9) {  // EOI
      const uint64_t blocks = (static_cast<uint64_t>(*width) + 7) / 8 * ((static_cast<uint64_t>(*height) + 7) / 8);
      if (entropy_bytes * 8 < blocks) {
        return "corrupt JPEG (" + std::to_string(entropy_bytes) + " bytes of compressed data cannot hold " +
               std::to_string(*width) + "x" + std::to_string(*height) + " pixels)";
      }
      return "";
    }
    if (m == 0x01 || (m >= 0xd0 && m <= 0xd7)) continue;  // no length
    if (i + 1 >= n) break;
    const size_t len = (static_cast<size_t>(d[i]) << 8) | d[i + 1];
    if (len < 2 || i + len > n) break;
    const bool sof = m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
    if (sof && *width == 0 && len >= 7) {
      *height = (d[i + 3] << 8) | d[i + 4];
      *width = (d[i + 5] << 8) | d[i + 6];
      progressive = m == 0xc2 || m == 0xc6 || m == 0xca || m == 0xce;
      const size_t nf = len >= 8 ? d[i + 7] : 0;
      if (len < 8 + 3 * nf) return "corrupt JPEG (frame header shorter than its component list)";
      for (size_t c = 0; c < nf; ++c) {
        const int tq = d[i + 10 + 3 * c];
        if (tq > 3) return "corrupt JPEG (bad quantization table id)";
        used_q |= 1u << tq;
      }
    }
    if (m == 0xdb) {  // DQT: one or more (precision/id, 64 or 128 bytes) tables
      size_t t = i + 2;
      const size_t end = i + len;
      while (t < end) {
        const int precision = d[t] >> 4, id = d[t] & 15;
        if (precision > 1 || id > 3) return "corrupt JPEG (bad quantization table precision or id)";
        defined_q |= 1u << id;
        t += 1 + 64 * (precision + 1);
      }
      if (t != end) return "corrupt JPEG (quantization table segment length mismatch)";
    }
    if (m == 0xc4) {  // DHT: one or more (class/id, 16 counts, symbols) tables
      size_t t = i + 2;
      const size_t end = i + len;
      while (t < end) {
        if (t + 17 > end) return "corrupt JPEG (Huffman table segment too short)";
        size_t codes = 0;
        for (int k = 1; k <= 16; ++k) codes += d[t + k];
        if (codes > 256) return "corrupt JPEG (Huffman table declares more than 256 codes)";
        const int table_class = d[t] >> 4, id = d[t] & 15;
        if (table_class > 1 || id > 3) return "corrupt JPEG (bad Huffman table class or id)";
        (table_class == 0 ? defined_dc : defined_ac) |= 1u << id;
        t += 17 + codes;
      }
      if (t != end) return "corrupt JPEG (Huffman table segment length mismatch)";
    }
    if (m == 0xda) {  // SOS: Ns, Ns x (component, DC/AC table ids), Ss, Se, Ah/Al
      const size_t ns = len >= 3 ? d[i + 2] : 0;
      if (ns < 1 || ns > 4 || len != 6 + 2 * ns) return "corrupt JPEG (bad scan header)";
      if ((used_q & ~defined_q) != 0) return "corrupt JPEG (a component uses a quantization table that was never defined)";
      const int ss = d[i + 3 + 2 * ns], ah = d[i + 5 + 2 * ns] >> 4;
      // Baseline scans use both tables; progressive DC scans (Ss = 0) use the
      // DC table on the first pass only, AC scans only the AC table.
      const bool uses_dc = !progressive || (ss == 0 && ah == 0);
      const bool uses_ac = !progressive || ss > 0;
      for (size_t c = 0; c < ns; ++c) {
        const int td = d[i + 4 + 2 * c] >> 4, ta = d[i + 4 + 2 * c] & 15;
        if ((uses_dc && (td > 3 || !(defined_dc >> td & 1))) || (uses_ac && (ta > 3 || !(defined_ac >> ta & 1)))) {
          return "unsupported JPEG (a scan uses a Huffman table that was never defined)";
        }
      }
    }
    i += len;
    if (m == 0xda) {
      // Entropy-coded data: ends at the first 0xff not followed by 0x00 (a
      // stuffed byte) or a restart marker.
      const size_t start = i;
      while (i + 1 < n) {
        if (d[i] == 0xff && d[i + 1] != 0x00 && !(d[i + 1] >= 0xd0 && d[i + 1] <= 0xd7)) break;
        ++i;
      }
      entropy_bytes += i - start;
    }
  }
  return "truncated JPEG (the data ends before the end-of-image marker)";
}

// Walks the PNG chunks before stb_image sees them. stb 2.27 grows its IDAT
// buffer to a chunk's declared length before checking that the bytes exist,
// and sizes its inflate buffer from the declared dimensions; both let a
// few-hundred-byte file ask for gigabytes. Refused here: a chunk longer than
// the rest of the file, and pixel data too short to inflate to the declared
// image (deflate expands at most 1032:1, so a complete image needs at least
// raw_bytes / 1032 compressed bytes), and an empty first IDAT chunk. A file
// cut inside its final IEND chunk
// passes (its pixels are all there; Pillow accepts it too).
std::string CheckPngStructure(const uint8_t* d, size_t n, int64_t width, int64_t height) {
  auto be32 = [&](size_t at) {
    return (uint64_t{d[at]} << 24) | (uint64_t{d[at + 1]} << 16) | (uint64_t{d[at + 2]} << 8) | d[at + 3];
  };
  uint64_t idat_bytes = 0;
  size_t pos = 8;
  while (pos + 8 <= n) {
    const uint64_t len = be32(pos);
    const std::string type(reinterpret_cast<const char*>(d + pos + 4), 4);
    if (len > n - pos - 8) {
      return "truncated PNG (chunk at byte " + std::to_string(pos) + " declares " + std::to_string(len) +
             " bytes, " + std::to_string(n - pos - 8) + " remain)";
    }
    if (type == "IDAT") {
      // stb 2.27 would memcpy(NULL, src, 0) for it; no encoder writes one.
      if (len == 0 && idat_bytes == 0) return "unsupported PNG (an empty IDAT chunk before the pixel data)";
      idat_bytes += len;
    }
    if (type == "IEND") break;
    pos += 12 + len;
  }
  const int depth = d[24];
  const int colour = d[25];
  const int channels = colour == 2 ? 3 : colour == 4 ? 2 : colour == 6 ? 4 : 1;
  const uint64_t row_bytes = 1 + (static_cast<uint64_t>(width) * channels * depth + 7) / 8;
  const uint64_t raw_bytes = row_bytes * static_cast<uint64_t>(height);
  if (idat_bytes * 1032 + 64 < raw_bytes) {
    return "truncated PNG (" + std::to_string(idat_bytes) + " bytes of compressed pixel data cannot hold " +
           std::to_string(width) + "x" + std::to_string(height) + " pixels)";
  }
  return "";
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

// stb keeps its last failure reason per thread and not every failure sets
// one, so the reason is cleared before each call and a missing one said so.
void ClearStbReason() { stbi__g_failure_reason = nullptr; }

std::string StbReason() {
  const char* r = stbi_failure_reason();
  return r && *r ? std::string("stb_image: ") + r : "stb_image gave no reason";
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

  // The declared size is read here, not by stb, so that absurd dimensions
  // get a clear message and are refused before anything is allocated. The
  // JPEG walk also runs before stb sees the file (its header parse already
  // builds the Huffman tables).
  int64_t declared_w = 0, declared_h = 0;
  std::string jpeg_problem;
  if (format == Format::kPng) {
    static const uint8_t kIhdr[4] = {'I', 'H', 'D', 'R'};
    if (size < 24 || !std::equal(kIhdr, kIhdr + 4, data + 12)) {
      return InvalidArgument(source + ": corrupt PNG (no IHDR chunk after the signature)");
    }
    auto be32 = [&](size_t at) {
      return (int64_t{data[at]} << 24) | (int64_t{data[at + 1]} << 16) | (int64_t{data[at + 2]} << 8) | data[at + 3];
    };
    declared_w = be32(16);
    declared_h = be32(20);
    if (size < 26) return InvalidArgument(source + ": truncated PNG (the header ends early)");
  } else {
    int jw = 0, jh = 0;
    jpeg_problem = CheckJpegStructure(data, size, &jw, &jh);
    declared_w = jw, declared_h = jh;
  }
  if (declared_w > kMaxSide || declared_h > kMaxSide || declared_w * declared_h > kMaxPixels) {
    return InvalidArgument(source + ": " + kind + " declares " + std::to_string(declared_w) + "x" +
                           std::to_string(declared_h) + " pixels; images up to " + std::to_string(kMaxSide) +
                           " per side and " + std::to_string(kMaxPixels / 1'000'000) + " megapixels are accepted");
  }
  if (!jpeg_problem.empty()) return InvalidArgument(source + ": " + jpeg_problem);
  if (format == Format::kPng) {
    const std::string problem = CheckPngStructure(data, size, declared_w, declared_h);
    if (!problem.empty()) return InvalidArgument(source + ": " + problem);
  }

  int w = 0, h = 0, comp = 0;
  ClearStbReason();
  if (!stbi_info_from_memory(data, len, &w, &h, &comp)) {
    return InvalidArgument(source + ": corrupt or unsupported " + kind + " header (" + StbReason() + ")");
  }
  if (w != declared_w || h != declared_h) {
    return InvalidArgument(source + ": corrupt " + kind + " (inconsistent image size in the header)");
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
    ClearStbReason();
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
  ClearStbReason();
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
