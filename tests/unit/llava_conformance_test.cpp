// LLaVA conformance against HF transformers: tiny random checkpoints written
// by transformers (tests/golden/llava_*), fed the golden pixel_values, must
// reproduce HF's vision hidden state and projector output (image_features)
// for both tensor-name layouts (model/ = v5, model_v4/ = v4).
#include <cmath>
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/vision_encoder.h"
#include "model/vit.h"
#include "model/vit_weights.h"
#include "test_paths.h"

namespace bitlens {
namespace {

struct Case {
  const char* golden;  // folder under tests/golden
  const char* model;   // model/ (v5 names) or model_v4/ (v4 names)
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.golden << "/" << c.model; }

std::string GoldenDir(const Case& c) { return testing::SourceDir() + "/tests/golden/" + c.golden; }

// Largest |a - b| over n values, with its index.
struct MaxDiff {
  double value = 0;
  int64_t index = -1;
};
MaxDiff Compare(const float* a, const float* b, int64_t n) {
  MaxDiff m;
  for (int64_t i = 0; i < n; ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (d > m.value || std::isnan(d)) m = {std::isnan(d) ? INFINITY : d, i};
  }
  return m;
}

class LlavaConformance : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case c = GetParam();
    dir_ = GoldenDir(c);
    if (!std::filesystem::exists(dir_ + "/golden.safetensors")) {
      GTEST_SKIP() << dir_ << " is missing: generate it with tests/conformance (HF transformers goldens)";
    }
    model_dir_ = dir_ + "/" + c.model;
    auto config = LoadModelConfig(model_dir_);
    ASSERT_TRUE(config.ok()) << config.status().message();
    config_ = *config;
    auto ckpt = Checkpoint::Open(model_dir_);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
    checkpoint_ = std::make_unique<Checkpoint>(std::move(ckpt).value());
    auto golden = Checkpoint::Open(dir_ + "/golden.safetensors");
    ASSERT_TRUE(golden.ok()) << golden.status().message();
    golden_ = std::make_unique<Checkpoint>(std::move(golden).value());
  }

  Tensor GoldenF32(const std::string& name) {
    auto t = golden_->Get(name);
    EXPECT_TRUE(t.ok()) << t.status().message();
    return t.ok() ? t->ToF32() : Tensor();
  }

  std::string dir_, model_dir_;
  ModelConfig config_;
  std::unique_ptr<Checkpoint> checkpoint_, golden_;
};

TEST_P(LlavaConformance, ImageFeaturesMatchTransformers) {
  auto encoder = VisionEncoder::Load(*checkpoint_, config_);
  ASSERT_TRUE(encoder.ok()) << encoder.status().message();
  const Tensor pixels = GoldenF32("pixel_values");  // [1, 3, H, W]
  const Tensor want = GoldenF32("image_features");  // [n_image_tokens, text_hidden]
  ASSERT_EQ(want.rank(), 2) << ShapeToString(want.shape());
  ASSERT_EQ((*encoder)->num_image_tokens(), want.dim(0));
  ASSERT_EQ((*encoder)->num_image_tokens(), config_.image_seq_length());
  ASSERT_EQ(config_.text.hidden_size, want.dim(1));
  std::vector<float> got(static_cast<size_t>(want.numel()));
  const Status s = (*encoder)->Encode(pixels, got.data());
  ASSERT_TRUE(s.ok()) << s.message();
  const MaxDiff d = Compare(got.data(), want.data_as<float>(), want.numel());
  EXPECT_LE(d.value, 1e-4) << model_dir_ << ": image_features differ most at row " << d.index / want.dim(1) << " col "
                           << d.index % want.dim(1) << ": got " << got[d.index] << ", HF "
                           << want.data_as<float>()[d.index];
}

// The tower alone against HF's hidden_states[vision_feature_layer], which
// localizes a mismatch to the ViT or to the projector.
TEST_P(LlavaConformance, SelectedHiddenStateMatchesTransformers) {
  if (!golden_->Has("vision_hidden_states")) GTEST_SKIP() << dir_ << " has no vision_hidden_states";
  const VisionConfig& v = *config_.vision;
  auto prefix = FindVisionTowerPrefix(*checkpoint_);
  ASSERT_TRUE(prefix.ok()) << prefix.status().message();
  WeightLoader loader(*checkpoint_, *prefix);
  auto weights = LoadVitWeights(loader, v, VitLayersForFeature(v, config_.vision_feature_layer));
  ASSERT_TRUE(weights.ok()) << weights.status().message();
  auto act = ActivationFromName(v.hidden_act, "hidden_act");
  ASSERT_TRUE(act.ok());
  VitTower tower(v, std::move(weights).value(), *act);

  const Tensor pixels = GoldenF32("pixel_values");
  const Tensor want = GoldenF32("vision_hidden_states");
  ASSERT_EQ(want.numel(), tower.seq_len() * v.hidden_size)
      << "vision_hidden_states " << ShapeToString(want.shape()) << " is not [" << tower.seq_len() << ", "
      << v.hidden_size << "]";
  const float* got = tower.Forward(pixels.data_as<float>());
  const MaxDiff d = Compare(got, want.data_as<float>(), want.numel());
  EXPECT_LE(d.value, 1e-4) << model_dir_ << ": hidden state differs most at position " << d.index / v.hidden_size
                           << " dim " << d.index % v.hidden_size << ": got " << got[d.index] << ", HF "
                           << want.data_as<float>()[d.index];
}

INSTANTIATE_TEST_SUITE_P(Goldens, LlavaConformance,
                         ::testing::Values(Case{"llava_clip_llama", "model"}, Case{"llava_clip_llama", "model_v4"},
                                           Case{"llava_siglip_phi3", "model"},
                                           Case{"llava_siglip_phi3", "model_v4"}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string n = std::string(info.param.golden) + "_" + info.param.model;
                           return n;
                         });

}  // namespace
}  // namespace bitlens
