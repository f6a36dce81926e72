// Decoding: what PNG/JPEG variants turn into (RGB semantics of transformers'
// convert_to_rgb) and how bad files are refused: one clear InvalidArgument
// naming the file, never a crash.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_paths.h"
#include "vision/image.h"
#include "vision/pil_resample.h"

namespace bitlens {
namespace {

std::string CorpusPath(const std::string& name) {
  return testing::SourceDir() + "/tests/fuzz/corpus/image_decode/" + name;
}

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return path;
}

void ExpectRejected(const Result<Image>& r, const std::string& source, const std::string& fragment) {
  ASSERT_FALSE(r.ok()) << source << " was accepted as a " << r->width << "x" << r->height << " image";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().message();
  EXPECT_EQ(r.status().message().rfind(source + ": ", 0), 0u) << r.status().message();
  EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
}

TEST(ImageDecode, TextFileRenamedPngIsNotAnImage) {
  const std::string path = WriteBytes(testing::ScratchDir() + "/notes.png",
                                      {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'});
  ExpectRejected(DecodeImageFile(path), path, "not a PNG or JPEG image (starts with bytes 68 65 6c 6c");
}

TEST(ImageDecode, EmptyFileIsNotAnImage) {
  const std::string path = WriteBytes(testing::ScratchDir() + "/empty.jpg", {});
  ExpectRejected(DecodeImageFile(path), path, "not a PNG or JPEG image (the file is empty)");
}

TEST(ImageDecode, MissingFileIsNotFound) {
  auto r = DecodeImageFile(testing::ScratchDir() + "/absent.png");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().message();
  EXPECT_NE(r.status().message().find("absent.png"), std::string::npos) << r.status().message();
}

TEST(ImageDecode, EveryTruncationOfPngPixelDataIsRejected) {
  // rgba.png: signature, IHDR (bytes 8..32), one IDAT, then the 12-byte IEND
  // chunk. Any cut before the end of the IDAT loses pixels and must be
  // refused. A cut inside IEND keeps every pixel: Pillow decodes such files,
  // stb refuses most of them; either way the pixels may not change.
  const std::vector<uint8_t> png = ReadBytes(CorpusPath("rgba.png"));
  ASSERT_GT(png.size(), 50u);
  auto full = DecodeImageMemory(png.data(), png.size(), "rgba.png");
  ASSERT_TRUE(full.ok()) << full.status().message();
  const size_t iend = png.size() - 12;
  ASSERT_EQ(std::string(png.begin() + iend + 4, png.begin() + iend + 8), "IEND");
  for (size_t n = 1; n < png.size(); ++n) {
    SCOPED_TRACE("first " + std::to_string(n) + " of " + std::to_string(png.size()) + " bytes");
    auto r = DecodeImageMemory(png.data(), n, "cut.png");
    if (n < iend) {
      ExpectRejected(r, "cut.png", "");
    } else if (r.ok()) {
      EXPECT_EQ(r->rgb, full->rgb);
    }
  }
}

TEST(ImageDecode, EveryTruncationOfAJpegIsRejected) {
  for (const char* name : {"baseline_420.jpg", "progressive.jpg", "restart.jpg", "grey.jpg"}) {
    const std::vector<uint8_t> jpg = ReadBytes(CorpusPath(name));
    ASSERT_GT(jpg.size(), 100u) << name;
    ASSERT_TRUE(DecodeImageMemory(jpg.data(), jpg.size(), name).ok()) << name;
    for (size_t n = 1; n < jpg.size(); ++n) {
      SCOPED_TRACE(std::string(name) + ": first " + std::to_string(n) + " of " + std::to_string(jpg.size()) + " bytes");
      ExpectRejected(DecodeImageMemory(jpg.data(), n, "cut.jpg"), "cut.jpg", "");
    }
  }
}

TEST(ImageDecode, TruncatedJpegSaysTruncated) {
  const std::string path = CorpusPath("truncated.jpg");
  ExpectRejected(DecodeImageFile(path), path, "truncated JPEG");
}

TEST(ImageDecode, HugeDeclaredDimensionsAreRejectedBeforeDecoding) {
  // PNG IHDR and JPEG SOF0 declaring 100000x100000 and 60000x60000: refused
  // from the header, before any pixel allocation.
  for (auto [name, dims] : {std::pair{"huge_dims.png", "100000x100000"}, std::pair{"huge_dims.jpg", "60000x60000"}}) {
    const std::string path = CorpusPath(name);
    ExpectRejected(DecodeImageFile(path), path, std::string("declares ") + dims + " pixels");
  }
  // Each side within the limit but over the pixel budget: 16000 x 16000.
  std::vector<uint8_t> png = ReadBytes(CorpusPath("rgb.png"));
  ASSERT_GE(png.size(), 33u);
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) png[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
  };
  put32(16, 16000);
  put32(20, 16000);  // stb does not check the IHDR CRC
  auto r = DecodeImageMemory(png.data(), png.size(), "big.png");
  ExpectRejected(r, "big.png", "declares 16000x16000 pixels");
}

TEST(ImageDecode, FilesThatBrokeStbImageAreRefusedFirst) {
  // Inputs the fuzzer found against Debian's stb_image 2.27 (kept as seeds):
  // each crashed, read uninitialized tables, allocated gigabytes or passed
  // NULL to memcpy inside stb before the structure checks in
  // image_decode.cpp refused them.
  const std::pair<const char*, const char*> cases[] = {
      {"regress_dht_over_256_codes.jpg", "more than 256 codes"},
      {"regress_undefined_huffman_table.jpg", "never defined"},
      {"regress_undefined_huffman_table_2.jpg", "never defined"},
      {"regress_chunk_overrun.png", "declares 1543503983 bytes"},
      {"regress_empty_idat.png", "empty IDAT chunk"},
      {"regress_scan_data_too_short.jpg", "corrupt JPEG"},
  };
  for (const auto& [name, fragment] : cases) {
    const std::string path = CorpusPath(name);
    ExpectRejected(DecodeImageFile(path), path, fragment);
  }
  // A valid small JPEG whose frame header is patched to 14000 x 4000: its
  // few hundred bytes of scan data cannot hold 875000 blocks.
  std::vector<uint8_t> jpg = ReadBytes(CorpusPath("baseline_420.jpg"));
  size_t sof = 2;
  while (sof + 1 < jpg.size() && !(jpg[sof] == 0xff && jpg[sof + 1] == 0xc0)) ++sof;
  ASSERT_LT(sof + 9, jpg.size());
  jpg[sof + 5] = 4000 >> 8, jpg[sof + 6] = 4000 & 255, jpg[sof + 7] = 14000 >> 8, jpg[sof + 8] = 14000 & 255;
  ExpectRejected(DecodeImageMemory(jpg.data(), jpg.size(), "bomb.jpg"), "bomb.jpg", "cannot hold 14000x4000 pixels");

  // A PNG declaring 10000 x 10000 RGB with a few bytes of pixel data.
  std::vector<uint8_t> png = ReadBytes(CorpusPath("rgb.png"));
  for (size_t at : {16, 20}) {
    png[at] = 0, png[at + 1] = 0, png[at + 2] = 0x27, png[at + 3] = 0x10;
  }
  ExpectRejected(DecodeImageMemory(png.data(), png.size(), "bomb.png"), "bomb.png",
                 "cannot hold 10000x10000 pixels");
}

TEST(ImageDecode, GreyscaleIsReplicatedIntoRgb) {
  const std::vector<uint8_t> bytes = ReadBytes(CorpusPath("grey.png"));
  auto r = DecodeImageMemory(bytes.data(), bytes.size(), "grey.png");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->width, 8);
  ASSERT_EQ(r->height, 6);
  for (int i = 0; i < 48; ++i) {
    EXPECT_EQ(r->rgb[3 * i], r->rgb[3 * i + 1]);
    EXPECT_EQ(r->rgb[3 * i], r->rgb[3 * i + 2]);
    EXPECT_EQ(r->rgb[3 * i], (i % 8) * 32) << "pixel " << i;  // the file holds x * 32
  }
}

TEST(ImageDecode, TransparencyIsCompositedOverWhite) {
  // rgba.png: alpha = x * 36, colour (x * 32, y * 40, x * y * 9 mod 256).
  const std::vector<uint8_t> bytes = ReadBytes(CorpusPath("rgba.png"));
  auto r = DecodeImageMemory(bytes.data(), bytes.size(), "rgba.png");
  ASSERT_TRUE(r.ok()) << r.status().message();
  // Column 0 is fully transparent: white, whatever the colour was.
  for (int y = 0; y < 6; ++y) {
    for (int c = 0; c < 3; ++c) EXPECT_EQ(r->rgb[(y * 8) * 3 + c], 255);
  }
  // Pillow's integer blend: out = round((c * a + 255 * (255 - a)) / 255)
  // within one level (its fixed-point rounding is what the goldens pin).
  for (int y = 0; y < 6; ++y) {
    for (int x = 1; x < 8; ++x) {
      const int a = x * 36;
      const int colour[3] = {x * 32, y * 40, (x * y * 9) % 256};
      for (int c = 0; c < 3; ++c) {
        const double want = (colour[c] * a + 255.0 * (255 - a)) / 255.0;
        EXPECT_NEAR(r->rgb[(y * 8 + x) * 3 + c], want, 1.0) << "x " << x << " y " << y << " c " << c;
      }
    }
  }
}

TEST(ImageDecode, SixteenBitPngsReduceLikePillow) {
  // rgb16.png stores v * 257 (high byte = v): Pillow keeps the high byte.
  const std::vector<uint8_t> rgb16 = ReadBytes(CorpusPath("rgb16.png"));
  const std::vector<uint8_t> rgb8 = ReadBytes(CorpusPath("rgb.png"));
  auto a = DecodeImageMemory(rgb16.data(), rgb16.size(), "rgb16.png");
  auto b = DecodeImageMemory(rgb8.data(), rgb8.size(), "rgb.png");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->rgb, b->rgb);
  // grey16.png stores x * 9000 + y: Pillow's "I;16" -> RGB saturates at 255.
  const std::vector<uint8_t> grey16 = ReadBytes(CorpusPath("grey16.png"));
  auto g = DecodeImageMemory(grey16.data(), grey16.size(), "grey16.png");
  ASSERT_TRUE(g.ok()) << g.status().message();
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 8; ++x) {
      const int want = std::min(x * 9000 + y, 255);
      EXPECT_EQ(g->rgb[(y * 8 + x) * 3], want) << "x " << x << " y " << y;
    }
  }
}

TEST(ImageDecode, EveryCorpusImageDecodesOrFailsCleanly) {
  int decoded = 0, refused = 0;
  for (const auto& e : std::filesystem::directory_iterator(testing::SourceDir() + "/tests/fuzz/corpus/image_decode")) {
    const std::string path = e.path().string();
    auto r = DecodeImageFile(path);
    if (r.ok()) {
      ++decoded;
      EXPECT_EQ(r->rgb.size(), static_cast<size_t>(r->width) * r->height * 3) << path;
    } else {
      ++refused;
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << path << ": " << r.status().message();
    }
  }
  EXPECT_GE(decoded, 10);
  EXPECT_GE(refused, 11);  // truncated, text, empty, huge dims, regressions
}

TEST(ImageResize, SameSizeIsACopyAndNearestIsUnsupported) {
  Image im;
  im.width = 3;
  im.height = 2;
  im.rgb = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18};
  auto same = ResizePil(im, 3, 2, 3);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->rgb, im.rgb);
  auto nearest = ResizePil(im, 6, 4, 0);
  ASSERT_FALSE(nearest.ok());
  EXPECT_EQ(nearest.status().code(), StatusCode::kUnsupported);
  EXPECT_FALSE(ResizePil(im, 0, 4, 3).ok());
}

TEST(ImageResize, ConstantImageStaysConstantUnderEveryFilter) {
  // The taps of every output pixel are normalized to sum 1; fixed-point
  // rounding of the taps may not move a flat field by more than one level
  // (Pillow rounds each tap half away from zero, so the sum can be off by a
  // few units of 2^-22).
  Image im;
  im.width = 37;
  im.height = 23;
  im.rgb.assign(37 * 23 * 3, 200);
  for (int filter : {1, 2, 3, 4, 5}) {
    for (auto [w, h] : {std::pair{11, 7}, std::pair{80, 50}, std::pair{37, 9}}) {
      auto r = ResizePil(im, w, h, filter);
      ASSERT_TRUE(r.ok());
      for (uint8_t v : r->rgb) ASSERT_NEAR(v, 200, 1) << "filter " << filter << " to " << w << "x" << h;
    }
  }
}

TEST(ImageResize, OutputSizeFollowsTransformers) {
  ImageProcessorConfig clip;  // shortest_edge
  clip.shortest_edge = 336;
  auto s = ResizeOutputSize({300, 451}, clip);  // chelsea: h 300, w 451
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->height, 336);
  EXPECT_EQ(s->width, 505);  // int(336 * 451 / 300) = int(505.12)
  s = ResizeOutputSize({600, 400}, clip);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->height, 504);
  EXPECT_EQ(s->width, 336);
  ImageProcessorConfig siglip;
  siglip.resize_height = 48;
  siglip.resize_width = 64;
  s = ResizeOutputSize({300, 451}, siglip);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->height, 48);
  EXPECT_EQ(s->width, 64);
}

TEST(ImageResize, CenterCropOffsetsAndPadding) {
  Image im;
  im.width = 5;
  im.height = 4;
  for (int i = 0; i < 20; ++i) im.rgb.insert(im.rgb.end(), {uint8_t(i), uint8_t(i), uint8_t(i)});
  // (4 - 3) // 2 = 0 rows from the top, (5 - 2) // 2 = 1 column from the left.
  Image c = CenterCropImage(im, 3, 2);
  ASSERT_EQ(c.rgb.size(), 18u);
  const uint8_t want[6] = {1, 2, 6, 7, 11, 12};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(c.rgb[3 * i], want[i]) << i;
  // Larger than the image: zero rows/columns, ceil((6 - 4) / 2) = 1 above,
  // ceil((8 - 5) / 2) = 2 on the left.
  Image p = CenterCropImage(im, 6, 8);
  ASSERT_EQ(p.rgb.size(), 6u * 8 * 3);
  EXPECT_EQ(p.rgb[(0 * 8 + 3) * 3], 0);
  EXPECT_EQ(p.rgb[(1 * 8 + 1) * 3], 0);
  EXPECT_EQ(p.rgb[(1 * 8 + 2) * 3], 0);  // source pixel (0, 0) has value 0 too
  EXPECT_EQ(p.rgb[(1 * 8 + 3) * 3], 1);
  EXPECT_EQ(p.rgb[(4 * 8 + 6) * 3], 19);
  EXPECT_EQ(p.rgb[(5 * 8 + 6) * 3], 0);
  EXPECT_EQ(p.rgb[(4 * 8 + 7) * 3], 0);
}

}  // namespace
}  // namespace bitlens
