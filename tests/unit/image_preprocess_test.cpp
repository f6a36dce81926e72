// Golden comparison of decode + preprocess against transformers' PIL-backend
// CLIPImageProcessor / SiglipImageProcessor (tests/conformance/image_preprocess.py
// writes tests/golden/vision/image_preprocess.safetensors). PNG inputs must match
// exactly; JPEG inputs differ by the decoder (stb_image vs Pillow's libjpeg)
// only, and the bound on that difference is measured and justified below.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "formats/safetensors.h"
#include "test_paths.h"
#include "vision/image.h"

namespace bitlens {
namespace {

using json = nlohmann::json;

std::string GoldenDir() { return testing::SourceDir() + "/tests/golden/vision"; }

struct Golden {
  std::shared_ptr<SafetensorsFile> file;
  json cases;
  Tensor Get(const std::string& name) const {
    const TensorEntry* e = file->Find(name);
    return e ? file->View(*e) : Tensor();
  }
};

const Golden& LoadGolden() {
  static Golden g = [] {
    Golden out;
    auto f = SafetensorsFile::Open(GoldenDir() + "/image_preprocess.safetensors");
    if (!f.ok()) return out;
    out.file = *f;
    out.cases = json::parse(out.file->metadata().at("cases"), nullptr, false);
    return out;
  }();
  return g;
}

Image ImageFromU8(const Tensor& t) {  // [H, W, 3]
  Image im;
  im.height = static_cast<int>(t.dim(0));
  im.width = static_cast<int>(t.dim(1));
  im.rgb.assign(t.data_as<uint8_t>(), t.data_as<uint8_t>() + t.numel());
  return im;
}

struct U8Diff {
  int max = 0;
  double mean = 0;
  int64_t count = 0;  // differing bytes
};

U8Diff Compare(const uint8_t* a, const uint8_t* b, size_t n) {
  U8Diff d;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const int v = std::abs(static_cast<int>(a[i]) - static_cast<int>(b[i]));
    d.max = std::max(d.max, v);
    sum += v;
    d.count += v != 0;
  }
  d.mean = n ? sum / n : 0;
  return d;
}

// Number of f32 values whose bits differ.
int64_t BitMismatches(const float* a, const float* b, size_t n, float* worst_abs) {
  int64_t count = 0;
  *worst_abs = 0;
  for (size_t i = 0; i < n; ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) {
      ++count;
      *worst_abs = std::max(*worst_abs, std::fabs(a[i] - b[i]));
    }
  }
  return count;
}

// JPEG bound. stb_image and libjpeg (Pillow) both decode baseline and
// progressive JPEG with integer IDCTs and fixed-point YCbCr->RGB, but with
// different IDCT precision, chroma upsampling and colour-conversion rounding.
// Measured over the whole image: grace_hopper.jpg (4:2:0) max 3, mean 0.051,
// 3.9% of bytes differ; rocket.jpg (4:4:4) max 2, mean 0.010. In the stored
// 64x64 windows of the five JPEG cases: max 3, mean <= 0.101 (the small
// 4:2:0 progressive image, where chroma edges are dense). After resize +
// crop: max 2, mean <= 0.103. The taps of a bicubic output pixel have
// sum(|w|) < 1.3, so a decoder error e moves a resampled value by at most
// about 1.3 e + 1 (rounding), and the mean stays near the decoder's mean.
// Bounds: the worst measured max plus one level, twice the worst measured
// mean. A real resampling or colour bug moves values by tens of levels, and
// the PNG cases pin the whole pipeline to exact equality anyway.
constexpr int kJpegDecodeMaxDiff = 4;
constexpr double kJpegDecodeMeanDiff = 0.2;
constexpr int kJpegResizedMaxDiff = 3;
constexpr double kJpegResizedMeanDiff = 0.2;

TEST(ImagePreprocessGolden, MatchesTransformersPilProcessors) {
  const Golden& g = LoadGolden();
  ASSERT_TRUE(g.file) << "missing " << GoldenDir() << "/image_preprocess.safetensors (run tests/conformance/image_preprocess.py)";
  ASSERT_TRUE(g.cases.is_array() && !g.cases.empty());
  if (testing::TestDataDir().empty()) GTEST_SKIP() << "shared test data not found (set BITLENS_TEST_DATA)";

  int checked = 0;
  for (const json& c : g.cases) {
    const std::string name = c["name"].get<std::string>();
    SCOPED_TRACE(name);
    const std::string src = c["image"].get<std::string>();
    const std::string rel = src.substr(src.find(':') + 1);
    const std::string path = src.rfind("data:", 0) == 0 ? testing::TestDataPath(rel) : GoldenDir() + "/" + rel;
    ASSERT_FALSE(path.empty()) << "test image " << rel << " not found";
    const bool jpeg = path.size() > 4 && path.substr(path.size() - 4) == ".jpg";

    auto config = ParseImageProcessorConfig(c["config"].dump(), name + " config");
    ASSERT_TRUE(config.ok()) << config.status().message();
    auto image = DecodeImageFile(path);
    ASSERT_TRUE(image.ok()) << image.status().message();
    auto resized = ResizeAndCropImage(*image, *config);
    ASSERT_TRUE(resized.ok()) << resized.status().message();

    const Tensor want_u8 = g.Get(name + "/resized_u8");
    ASSERT_EQ(want_u8.rank(), 3);
    ASSERT_EQ(resized->height, want_u8.dim(0));
    ASSERT_EQ(resized->width, want_u8.dim(1));
    const U8Diff d = Compare(resized->rgb.data(), want_u8.data_as<uint8_t>(), resized->rgb.size());

    const Tensor pixel_values = ImageToPixelValues(*resized, *config);
    ASSERT_EQ(pixel_values.shape(), (Shape{3, want_u8.dim(0), want_u8.dim(1)}));
    const size_t n = pixel_values.numel();

    // What the processor's rescale + normalize make of the golden u8 image,
    // computed by bitlens: must be bit-equal to the stored pixel_values (or
    // to the exhaustive u8 -> f32 table when those were not stored).
    const Tensor from_golden_u8 = ImageToPixelValues(ImageFromU8(want_u8), *config);
    const Tensor want_pv = g.Get(name + "/pixel_values");
    std::vector<float> reference(n);
    if (!want_pv.empty()) {
      ASSERT_EQ(want_pv.shape(), pixel_values.shape());
      std::memcpy(reference.data(), want_pv.data(), n * sizeof(float));
    } else {
      const bool siglip = config->processor_type == "SiglipImageProcessor";
      const Tensor table = g.Get(siglip ? "normalize_table/siglip" : "normalize_table/clip");  // [3, 256]
      ASSERT_EQ(table.numel(), 3 * 256);
      const int64_t plane = want_u8.dim(0) * want_u8.dim(1);
      const uint8_t* u8 = want_u8.data_as<uint8_t>();
      for (int ch = 0; ch < 3; ++ch) {
        for (int64_t i = 0; i < plane; ++i) reference[ch * plane + i] = table.data_as<float>()[ch * 256 + u8[3 * i + ch]];
      }
    }
    float worst = 0;
    const int64_t normalize_mismatch = BitMismatches(from_golden_u8.data_as<float>(), reference.data(), n, &worst);
    EXPECT_EQ(normalize_mismatch, 0) << "rescale+normalize differ from numpy on " << normalize_mismatch
                                     << " values, worst abs diff " << worst;

    if (!jpeg) {
      EXPECT_EQ(d.max, 0) << "resized u8 differs from Pillow: max " << d.max << ", mean " << d.mean << ", "
                          << d.count << " of " << resized->rgb.size() << " bytes";
      const int64_t pv_mismatch = BitMismatches(pixel_values.data_as<float>(), reference.data(), n, &worst);
      EXPECT_EQ(pv_mismatch, 0) << pv_mismatch << " pixel_values differ, worst abs diff " << worst;
    } else {
      const Tensor crop = g.Get(name + "/decoded_crop");
      ASSERT_EQ(crop.shape(), (Shape{64, 64, 3}));
      const int y0 = c["decoded_crop_origin"][0].get<int>(), x0 = c["decoded_crop_origin"][1].get<int>();
      std::vector<uint8_t> ours(64 * 64 * 3);
      for (int y = 0; y < 64; ++y) {
        std::memcpy(&ours[y * 64 * 3], &image->rgb[(static_cast<size_t>(y0 + y) * image->width + x0) * 3], 64 * 3);
      }
      const U8Diff dec = Compare(ours.data(), crop.data_as<uint8_t>(), ours.size());
      std::printf("[ jpeg     ] %-30s decode vs Pillow: max %d mean %.3f | resized: max %d mean %.3f (%lld/%zu differ)\n",
                  name.c_str(), dec.max, dec.mean, d.max, d.mean, static_cast<long long>(d.count), resized->rgb.size());
      EXPECT_LE(dec.max, kJpegDecodeMaxDiff);
      EXPECT_LE(dec.mean, kJpegDecodeMeanDiff);
      EXPECT_LE(d.max, kJpegResizedMaxDiff);
      EXPECT_LE(d.mean, kJpegResizedMeanDiff);
    }
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

}  // namespace
}  // namespace bitlens
