// preprocessor_config.json parsing: the real checkpoints' files, transformers'
// defaults and legacy spellings, and errors that name the file and field.
#include <string>

#include <gtest/gtest.h>

#include "base/mmap_file.h"
#include "test_paths.h"
#include "vision/image.h"

namespace bitlens {
namespace {

Result<ImageProcessorConfig> Parse(const std::string& text) { return ParseImageProcessorConfig(text, "pp.json"); }

void ExpectError(const std::string& text, StatusCode code, const std::string& fragment) {
  auto r = Parse(text);
  ASSERT_FALSE(r.ok()) << text;
  EXPECT_EQ(r.status().code(), code) << r.status().message();
  EXPECT_EQ(r.status().message().rfind("pp.json: ", 0), 0u) << r.status().message();
  EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
}

TEST(ImageProcessorConfig, ParsesLlava15) {
  BL_REQUIRE_TEST_DATA(dir, "configs/llava-1.5-7b-hf");
  auto c = LoadImageProcessorConfig(dir);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->processor_type, "CLIPImageProcessor");
  EXPECT_TRUE(c->do_resize);
  EXPECT_EQ(c->shortest_edge, 336);
  EXPECT_EQ(c->resize_height, 0);
  EXPECT_TRUE(c->do_center_crop);
  EXPECT_EQ(c->crop_height, 336);
  EXPECT_EQ(c->crop_width, 336);
  EXPECT_EQ(c->resample, 3);
  EXPECT_DOUBLE_EQ(c->rescale_factor, 0.00392156862745098);
  EXPECT_EQ(c->image_mean[0], 0.48145466f);
  EXPECT_EQ(c->image_mean[2], 0.40821073f);
  EXPECT_EQ(c->image_std[1], 0.26130258f);
}

TEST(ImageProcessorConfig, OtherFamiliesAreUnsupportedByName) {
  for (const char* model : {"SmolVLM-256M-Instruct", "Qwen2-VL-2B"}) {
    const std::string dir = testing::TestDataPath(std::string("configs/") + model);
    if (dir.empty()) GTEST_SKIP() << "configs not found";
    auto c = LoadImageProcessorConfig(dir);
    ASSERT_FALSE(c.ok()) << model;
    EXPECT_EQ(c.status().code(), StatusCode::kUnsupported) << c.status().message();
    EXPECT_NE(c.status().message().find(dir + "/preprocessor_config.json: "), std::string::npos)
        << c.status().message();
    const char* type = std::string(model).rfind("Smol", 0) == 0 ? "Idefics3ImageProcessor" : "Qwen2VLImageProcessor";
    EXPECT_NE(c.status().message().find(type), std::string::npos) << c.status().message();
  }
}

TEST(ImageProcessorConfig, Phi4MultimodalIsUnsupportedByName) {
  BL_REQUIRE_TEST_DATA(path, "configs/Phi-4-multimodal-instruct/preprocessor_config.reconstructed.json");
  auto text = ReadTextFile(path);
  ASSERT_TRUE(text.ok());
  auto c = ParseImageProcessorConfig(*text, path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(c.status().message().find(path + ": image processor 'Phi4MMImageProcessor' is not supported"),
            std::string::npos)
      << c.status().message();
}

TEST(ImageProcessorConfig, MissingFileIsNotFound) {
  auto c = LoadImageProcessorConfig(testing::ScratchDir());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("preprocessor_config.json"), std::string::npos) << c.status().message();
}

TEST(ImageProcessorConfig, SiglipDefaultsAndFixedSize) {
  auto c = Parse(R"({"image_processor_type": "SiglipImageProcessor", "size": {"height": 384, "width": 384}})");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->processor_type, "SiglipImageProcessor");
  EXPECT_EQ(c->resize_height, 384);
  EXPECT_EQ(c->resize_width, 384);
  EXPECT_EQ(c->shortest_edge, 0);
  EXPECT_FALSE(c->do_center_crop);
  EXPECT_EQ(c->resample, 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c->image_mean[i], 0.5f);
    EXPECT_EQ(c->image_std[i], 0.5f);
  }
}

TEST(ImageProcessorConfig, ClipDefaultsWhenKeysAreAbsent) {
  auto c = Parse(R"({"image_processor_type": "CLIPImageProcessor", "crop_size": null})");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->shortest_edge, 224);
  EXPECT_TRUE(c->do_center_crop);
  EXPECT_EQ(c->crop_height, 224);
  EXPECT_EQ(c->image_std[0], 0.26862954f);
}

TEST(ImageProcessorConfig, LegacySpellings) {
  // Integer size means shortest edge (default_to_square=False), integer
  // crop_size a square; feature_extractor_type names the class in old files;
  // the v5 backend suffixes name the same processors.
  auto c = Parse(R"({"feature_extractor_type": "CLIPFeatureExtractor", "size": 224, "crop_size": 200,
                     "image_mean": 0.5, "image_std": [1, 2, 3], "resample": 2})");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->processor_type, "CLIPImageProcessor");
  EXPECT_EQ(c->shortest_edge, 224);
  EXPECT_EQ(c->crop_height, 200);
  EXPECT_EQ(c->crop_width, 200);
  EXPECT_EQ(c->image_mean[1], 0.5f);
  EXPECT_EQ(c->image_std[2], 3.0f);
  EXPECT_EQ(c->resample, 2);
  for (const char* t : {"CLIPImageProcessorPil", "CLIPImageProcessorFast", "SiglipImageProcessorPil"}) {
    auto r = Parse(std::string(R"({"image_processor_type": ")") + t + R"("})");
    EXPECT_TRUE(r.ok()) << t << ": " << r.status().message();
  }
  auto l = Parse(R"({"image_processor_type": "SiglipImageProcessor", "size": [32, 48]})");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->resize_height, 32);
  EXPECT_EQ(l->resize_width, 48);
}

TEST(ImageProcessorConfig, ErrorsNameTheField) {
  ExpectError("{not json", StatusCode::kInvalidArgument, "not valid JSON");
  ExpectError("[1, 2]", StatusCode::kInvalidArgument, "JSON object");
  ExpectError("{}", StatusCode::kInvalidArgument, "image_processor_type");
  ExpectError(R"({"image_processor_type": "Idefics3ImageProcessor"})", StatusCode::kUnsupported, "Idefics3ImageProcessor");
  const std::string clip = R"({"image_processor_type": "CLIPImageProcessor", )";
  ExpectError(clip + R"("size": {"shortest_edge": -3}})", StatusCode::kInvalidArgument, "'size.shortest_edge'");
  ExpectError(clip + R"("size": {"height": 3}})", StatusCode::kInvalidArgument, "'size'");
  ExpectError(clip + R"("size": "big"})", StatusCode::kInvalidArgument, "'size'");
  ExpectError(clip + R"("size": {"shortest_edge": 99999999}})", StatusCode::kInvalidArgument, "'size.shortest_edge'");
  ExpectError(clip + R"("crop_size": {"height": 3}})", StatusCode::kInvalidArgument, "'crop_size'");
  ExpectError(clip + R"("resample": "bicubic"})", StatusCode::kInvalidArgument, "'resample'");
  ExpectError(clip + R"("resample": 9})", StatusCode::kInvalidArgument, "'resample'");
  ExpectError(clip + R"("resample": 0})", StatusCode::kUnsupported, "nearest");
  ExpectError(clip + R"("image_mean": [0.5, 0.5]})", StatusCode::kInvalidArgument, "'image_mean'");
  ExpectError(clip + R"("image_std": [0.5, 0, 0.5]})", StatusCode::kInvalidArgument, "'image_std'");
  ExpectError(clip + R"("do_resize": "yes"})", StatusCode::kInvalidArgument, "'do_resize'");
  ExpectError(clip + R"("rescale_factor": "1/255"})", StatusCode::kInvalidArgument, "'rescale_factor'");
  ExpectError(clip + R"("size": {"max_height": 10, "max_width": 10}})", StatusCode::kUnsupported, "size");
}

}  // namespace
}  // namespace bitlens
