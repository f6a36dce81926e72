// LLaVA conformance against HF transformers: tiny random checkpoints written
// by transformers (tests/golden/llava_*), fed the golden pixel_values, must
// reproduce HF's vision hidden state, projector output (image_features),
// full-model logits at every position and the 16 greedy ids, for both
// tensor-name layouts (model/ = transformers 5 save_pretrained, model_v4/).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/model.h"
#include "model/vision_encoder.h"
#include "model/vit.h"
#include "model/vit_weights.h"
#include "runtime/session.h"
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

// The whole VLM: golden pixel_values through the encoder, its rows spliced at
// the image-token positions of the golden input_ids, then the decoder.
TEST_P(LlavaConformance, LogitsAndGreedyIdsMatchTransformers) {
  auto model = LoadModel(model_dir_);
  ASSERT_TRUE(model.ok()) << model.status().message();
  ASSERT_NE((*model)->vision, nullptr) << model_dir_ << ": loaded without a vision encoder";
  auto session = Session::Create(**model, SessionOptions{});
  ASSERT_TRUE(session.ok()) << session.status().message();

  const Tensor pixels = GoldenF32("pixel_values");
  std::vector<float> image_rows(static_cast<size_t>((*model)->vision->num_image_tokens() * config_.text.hidden_size));
  const Status enc = (*model)->vision->Encode(pixels, image_rows.data());
  ASSERT_TRUE(enc.ok()) << enc.message();

  auto ids_tensor = golden_->Get("input_ids");  // int64 [T]
  ASSERT_TRUE(ids_tensor.ok()) << ids_tensor.status().message();
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < ids_tensor->numel(); ++i) ids.push_back(static_cast<int32_t>(ids_tensor->data_as<int64_t>()[i]));
  const int64_t image_positions = std::count(ids.begin(), ids.end(), static_cast<int32_t>(config_.image_token_index));
  ASSERT_EQ(image_positions, (*model)->vision->num_image_tokens());

  const Tensor want = GoldenF32("logits");  // [T, vocab]
  const int64_t vocab = config_.text.vocab_size;
  ASSERT_EQ(want.numel(), static_cast<int64_t>(ids.size()) * vocab) << ShapeToString(want.shape());
  auto logits = (*session)->EvaluateLogits(ids, image_rows.data());
  ASSERT_TRUE(logits.ok()) << logits.status().message();
  ASSERT_EQ(static_cast<int64_t>(logits->size()), want.numel());
  // Checked position by position so a failure names the first bad position.
  for (size_t t = 0; t < ids.size(); ++t) {
    const MaxDiff d = Compare(logits->data() + t * vocab, want.data_as<float>() + t * vocab, vocab);
    ASSERT_LE(d.value, 1e-3) << model_dir_ << ": logits at position " << t << " (id " << ids[t] << ") differ most at token "
                             << d.index << ": got " << (*logits)[t * vocab + d.index] << ", HF "
                             << want.data_as<float>()[t * vocab + d.index];
  }

  // Greedy decoding through the KV cache: prefill, then argmax and step.
  auto greedy = golden_->Get("greedy_ids");  // int64 [16]
  ASSERT_TRUE(greedy.ok()) << greedy.status().message();
  const Tensor greedy_logits = GoldenF32("greedy_logits");  // [16, vocab]
  ASSERT_TRUE((*session)->Prefill(ids.data(), static_cast<int64_t>(ids.size()), image_rows.data()).ok());
  std::vector<int64_t> got_ids, want_ids(greedy->data_as<int64_t>(), greedy->data_as<int64_t>() + greedy->numel());
  for (int64_t step = 0; step < greedy->numel(); ++step) {
    const float* l = (*session)->logits();
    const MaxDiff d = Compare(l, greedy_logits.data_as<float>() + step * vocab, vocab);
    EXPECT_LE(d.value, 1e-3) << model_dir_ << ": decode step " << step << " logits differ most at token " << d.index
                             << ": got " << l[d.index] << ", HF " << greedy_logits.data_as<float>()[step * vocab + d.index];
    const int32_t next = static_cast<int32_t>(std::max_element(l, l + vocab) - l);
    got_ids.push_back(next);
    if (step + 1 < greedy->numel()) {
      ASSERT_TRUE((*session)->DecodeStep(next).ok());
    }
  }
  EXPECT_EQ(got_ids, want_ids) << model_dir_ << ": greedy ids differ from transformers' generate()";
}

INSTANTIATE_TEST_SUITE_P(Goldens, LlavaConformance,
                         ::testing::Values(Case{"llava_clip_llama", "model"}, Case{"llava_clip_llama", "model_v4"},
                                           Case{"llava_siglip_phi3", "model"},
                                           Case{"llava_siglip_phi3", "model_v4"}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string n = std::string(info.param.golden) + "_" + info.param.model;
                           return n;
                         });

// Tokens (third column) of a row of the CLI's timing table, or -1.
int64_t TimingTableTokens(const std::string& table, const std::string& stage) {
  std::istringstream lines(table);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream row(line);
    std::string name, ms, tokens;
    if (row >> name >> ms >> tokens && name == stage) {
      return tokens.find_first_not_of("0123456789") == std::string::npos ? std::stoll(tokens) : -1;
    }
  }
  return -1;
}

// End to end through the CLI: `bitlens synth` writes a tiny LLaVA (CLIP and
// SigLIP towers), `bitlens run` decodes, resizes and encodes a real photo,
// splices the image rows and streams 16 tokens with a timing table.
TEST(LlavaCli, SynthesizedTinyLlavaDescribesAPhoto) {
  BL_REQUIRE_TEST_DATA(image, "images/astronaut.png");
  // The models live beside ScratchDir(), which every call to it empties.
  const std::string models = testing::ScratchDir() + "-models";
  std::filesystem::create_directories(models);
  for (const char* family : {"llava", "llava-siglip"}) {
    const std::string dir = models + "/" + family;
    const testing::CliResult synth =
        testing::RunCli(std::string("synth --family ") + family + " --preset tiny -o " + dir);
    ASSERT_EQ(synth.exit_code, 0) << synth.err;
    auto config = LoadModelConfig(dir);
    ASSERT_TRUE(config.ok()) << config.status().message();

    const testing::CliResult run = testing::RunCli("run --model " + dir + " --image " + image +
                                                   " --prompt 'What is in this picture?' --max-tokens 16");
    ASSERT_EQ(run.exit_code, 0) << family << ": " << run.err;
    EXPECT_FALSE(run.out.empty()) << family << ": nothing streamed to stdout";
    EXPECT_EQ(TimingTableTokens(run.err, "decode"), 16) << family << ": stderr was\n" << run.err;
    EXPECT_EQ(TimingTableTokens(run.err, "vision"), config->image_seq_length()) << family << ": stderr was\n" << run.err;
    EXPECT_GE(TimingTableTokens(run.err, "prefill"), config->image_seq_length()) << family << ": stderr was\n" << run.err;
  }
}

}  // namespace
}  // namespace bitlens
