// VisionEncoder on hand-built tiny checkpoints: patch embedding, class token,
// select strategy, projector math, layer selection, name layouts and the
// one-line errors for bad checkpoints and bad pixel_values.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/f16.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/vision_encoder.h"
#include "model/vit.h"
#include "model/vit_weights.h"
#include "test_paths.h"

namespace bitlens {
namespace {

constexpr int64_t kC = 3, kImage = 8, kPatch = 4, kGrid = 2, kPatches = 4;
constexpr int64_t kHidden = 8, kFf = 16, kLayers = 2;

struct TinySpec {
  bool siglip = false;
  int64_t feature_layer = 0;  // 0: the embeddings output (no encoder layer runs)
  std::string strategy = "default";
  std::string projector_act = "gelu";
  int64_t text_hidden = 12;
  bool projector_bias = true;
  std::string tower_prefix = "vision_tower.vision_model.";
  std::string projector_prefix = "multi_modal_projector.";
};

std::string ConfigJson(const TinySpec& s) {
  return std::string("{\"model_type\": \"llava\", \"architectures\": [\"LlavaForConditionalGeneration\"],") +
         "\"image_token_index\": 63, \"vision_feature_layer\": " + std::to_string(s.feature_layer) +
         ", \"vision_feature_select_strategy\": \"" + s.strategy + "\", \"projector_hidden_act\": \"" +
         s.projector_act + "\", \"multimodal_projector_bias\": " + (s.projector_bias ? "true" : "false") +
         ", \"text_config\": {\"model_type\": \"llama\", \"hidden_size\": " + std::to_string(s.text_hidden) +
         ", \"intermediate_size\": 32, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 64}" +
         ", \"vision_config\": {\"model_type\": \"" + (s.siglip ? "siglip_vision_model" : "clip_vision_model") +
         "\", \"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 2, \"num_attention_heads\": 2," +
         " \"image_size\": 8, \"patch_size\": 4, \"hidden_act\": \"" + (s.siglip ? "gelu_pytorch_tanh" : "quick_gelu") +
         "\"}}";
}

using Named = std::vector<std::pair<std::string, Tensor>>;

Tensor Random(Shape shape, std::mt19937& rng, float scale = 0.5f) {
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(static_cast<size_t>(NumElements(shape)));
  for (float& x : v) x = dist(rng);
  return Tensor::FromF32(std::move(shape), v);
}

Named TinyTensors(const TinySpec& s, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  Named t;
  const std::string v = s.tower_prefix, p = s.projector_prefix;
  const int64_t positions = kPatches + (s.siglip ? 0 : 1);
  t.emplace_back(v + "embeddings.patch_embedding.weight", Random({kHidden, kC, kPatch, kPatch}, rng));
  t.emplace_back(v + "embeddings.position_embedding.weight", Random({positions, kHidden}, rng));
  if (s.siglip) {
    t.emplace_back(v + "embeddings.patch_embedding.bias", Random({kHidden}, rng));
  } else {
    t.emplace_back(v + "embeddings.class_embedding", Random({kHidden}, rng));
    t.emplace_back(v + "pre_layrnorm.weight", Random({kHidden}, rng));
    t.emplace_back(v + "pre_layrnorm.bias", Random({kHidden}, rng));
  }
  for (int64_t i = 0; i < kLayers; ++i) {
    const std::string n = v + "encoder.layers." + std::to_string(i) + ".";
    for (const char* ln : {"layer_norm1", "layer_norm2"}) {
      t.emplace_back(n + ln + ".weight", Random({kHidden}, rng));
      t.emplace_back(n + ln + ".bias", Random({kHidden}, rng));
    }
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      t.emplace_back(n + "self_attn." + proj + ".weight", Random({kHidden, kHidden}, rng));
      t.emplace_back(n + "self_attn." + proj + ".bias", Random({kHidden}, rng));
    }
    t.emplace_back(n + "mlp.fc1.weight", Random({kFf, kHidden}, rng));
    t.emplace_back(n + "mlp.fc1.bias", Random({kFf}, rng));
    t.emplace_back(n + "mlp.fc2.weight", Random({kHidden, kFf}, rng));
    t.emplace_back(n + "mlp.fc2.bias", Random({kHidden}, rng));
  }
  t.emplace_back(p + "linear_1.weight", Random({s.text_hidden, kHidden}, rng));
  t.emplace_back(p + "linear_2.weight", Random({s.text_hidden, s.text_hidden}, rng));
  if (s.projector_bias) {
    t.emplace_back(p + "linear_1.bias", Random({s.text_hidden}, rng));
    t.emplace_back(p + "linear_2.bias", Random({s.text_hidden}, rng));
  }
  return t;
}

Tensor& Find(Named& t, const std::string& name) {
  for (auto& [n, x] : t) {
    if (n == name) return x;
  }
  ADD_FAILURE() << "no tensor " << name;
  static Tensor none;
  return none;
}

void Remove(Named& t, const std::string& name) {
  std::erase_if(t, [&](const auto& e) { return e.first == name; });
}

// Writes the tensors and opens them the way a model directory is opened.
struct Loaded {
  std::string path;
  ModelConfig config;
  std::unique_ptr<Checkpoint> checkpoint;
};
Loaded Write(const TinySpec& s, const Named& tensors) {
  Loaded l;
  l.path = testing::ScratchDir() + "/model.safetensors";
  const Status w = WriteSafetensors(l.path, tensors);
  EXPECT_TRUE(w.ok()) << w.message();
  auto config = ParseModelConfig(ConfigJson(s), "config.json");
  EXPECT_TRUE(config.ok()) << config.status().message();
  if (config.ok()) l.config = *config;
  auto ckpt = Checkpoint::Open(l.path);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status().message();
  if (ckpt.ok()) l.checkpoint = std::make_unique<Checkpoint>(std::move(ckpt).value());
  return l;
}

Tensor Pixels(uint32_t seed = 7) {
  std::mt19937 rng(seed);
  return Random({kC, kImage, kImage}, rng, 1.0f);
}

std::vector<float> Encode(const Loaded& l, const Tensor& pixels, int64_t* tokens = nullptr) {
  auto enc = VisionEncoder::Load(*l.checkpoint, l.config);
  EXPECT_TRUE(enc.ok()) << enc.status().message();
  if (!enc.ok()) return {};
  std::vector<float> out(static_cast<size_t>((*enc)->num_image_tokens() * l.config.text.hidden_size), NAN);
  const Status s = (*enc)->Encode(pixels, out.data());
  EXPECT_TRUE(s.ok()) << s.message();
  if (tokens) *tokens = (*enc)->num_image_tokens();
  return out;
}

// Scalar references written from the HF modules' definitions.
std::vector<float> LayerNormRows(const std::vector<float>& x, const float* w, const float* b, int64_t dim, double eps) {
  std::vector<float> y(x.size());
  for (size_t r = 0; r < x.size() / dim; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < dim; ++i) mean += x[r * dim + i];
    mean /= dim;
    for (int64_t i = 0; i < dim; ++i) var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
    var /= dim;
    for (int64_t i = 0; i < dim; ++i) y[r * dim + i] = static_cast<float>((x[r * dim + i] - mean) / std::sqrt(var + eps) * w[i] + b[i]);
  }
  return y;
}

// hidden_states[0]: conv patches (+ SigLIP bias), CLIP class token, position
// embeddings, CLIP pre_layrnorm.  -> [positions, hidden]
std::vector<float> EmbeddingsReference(Named& t, const TinySpec& s, const Tensor& pixels) {
  const std::string v = s.tower_prefix;
  const float* conv = Find(t, v + "embeddings.patch_embedding.weight").data_as<float>();  // [D, C, p, p]
  const float* pos = Find(t, v + "embeddings.position_embedding.weight").data_as<float>();
  const float* px = pixels.data_as<float>();  // [C, H, W]
  const int64_t first = s.siglip ? 0 : 1;
  std::vector<float> h(static_cast<size_t>((kPatches + first) * kHidden), 0.f);
  if (!s.siglip) {
    const float* cls = Find(t, v + "embeddings.class_embedding").data_as<float>();
    for (int64_t d = 0; d < kHidden; ++d) h[d] = cls[d];
  }
  for (int64_t gy = 0; gy < kGrid; ++gy) {
    for (int64_t gx = 0; gx < kGrid; ++gx) {
      for (int64_t d = 0; d < kHidden; ++d) {
        double acc = s.siglip ? Find(t, v + "embeddings.patch_embedding.bias").data_as<float>()[d] : 0.0;
        for (int64_t c = 0; c < kC; ++c) {
          for (int64_t ky = 0; ky < kPatch; ++ky) {
            for (int64_t kx = 0; kx < kPatch; ++kx) {
              acc += double(conv[((d * kC + c) * kPatch + ky) * kPatch + kx]) *
                     px[(c * kImage + gy * kPatch + ky) * kImage + gx * kPatch + kx];
            }
          }
        }
        h[(first + gy * kGrid + gx) * kHidden + d] = static_cast<float>(acc);
      }
    }
  }
  for (size_t i = 0; i < h.size(); ++i) h[i] += pos[i];
  if (!s.siglip) {
    h = LayerNormRows(h, Find(t, v + "pre_layrnorm.weight").data_as<float>(),
                      Find(t, v + "pre_layrnorm.bias").data_as<float>(), kHidden, 1e-5);
  }
  return h;
}

double GeluErf(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }

// linear_1 -> gelu -> linear_2 on rows [first, rows) of `features`.
std::vector<float> ProjectorReference(Named& t, const TinySpec& s, const std::vector<float>& features, int64_t first) {
  const int64_t td = s.text_hidden, rows = static_cast<int64_t>(features.size()) / kHidden;
  const float* w1 = Find(t, s.projector_prefix + "linear_1.weight").data_as<float>();
  const float* w2 = Find(t, s.projector_prefix + "linear_2.weight").data_as<float>();
  const float* b1 = s.projector_bias ? Find(t, s.projector_prefix + "linear_1.bias").data_as<float>() : nullptr;
  const float* b2 = s.projector_bias ? Find(t, s.projector_prefix + "linear_2.bias").data_as<float>() : nullptr;
  std::vector<float> out;
  for (int64_t r = first; r < rows; ++r) {
    std::vector<double> mid(td);
    for (int64_t o = 0; o < td; ++o) {
      double acc = b1 ? b1[o] : 0.0;
      for (int64_t i = 0; i < kHidden; ++i) acc += double(w1[o * kHidden + i]) * features[r * kHidden + i];
      mid[o] = GeluErf(acc);
    }
    for (int64_t o = 0; o < td; ++o) {
      double acc = b2 ? b2[o] : 0.0;
      for (int64_t i = 0; i < td; ++i) acc += w2[o * td + i] * mid[i];
      out.push_back(static_cast<float>(acc));
    }
  }
  return out;
}

void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, double tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::fabs(double(got[i]) - want[i]);
    if (!(d <= worst)) worst = d, at = i;
  }
  EXPECT_LE(worst, tol) << what << ": worst difference at " << at << ": got " << got[at] << ", want " << want[at];
}

TEST(VisionEncoder, ClipDefaultStrategyDropsClassTokenThenProjects) {
  TinySpec s;
  Named t = TinyTensors(s);
  Loaded l = Write(s, t);
  const Tensor px = Pixels();
  int64_t tokens = 0;
  const std::vector<float> got = Encode(l, px, &tokens);
  EXPECT_EQ(tokens, kPatches);
  EXPECT_EQ(tokens, l.config.image_seq_length());
  ExpectNear(got, ProjectorReference(t, s, EmbeddingsReference(t, s, px), /*first=*/1), 1e-4, "image_features");
}

TEST(VisionEncoder, ClipFullStrategyKeepsClassToken) {
  TinySpec s;
  s.strategy = "full";
  Named t = TinyTensors(s);
  Loaded l = Write(s, t);
  const Tensor px = Pixels();
  int64_t tokens = 0;
  const std::vector<float> got = Encode(l, px, &tokens);
  EXPECT_EQ(tokens, kPatches + 1);
  ExpectNear(got, ProjectorReference(t, s, EmbeddingsReference(t, s, px), 0), 1e-4, "image_features");
}

// transformers drops position 0 under "default" even though SigLIP has no
// class token: the first real patch is dropped.
TEST(VisionEncoder, SiglipDefaultStrategyDropsFirstPatch) {
  TinySpec s;
  s.siglip = true;
  Named t = TinyTensors(s);
  Loaded l = Write(s, t);
  const Tensor px = Pixels();
  int64_t tokens = 0;
  const std::vector<float> got = Encode(l, px, &tokens);
  EXPECT_EQ(tokens, kPatches - 1);
  EXPECT_EQ(tokens, l.config.image_seq_length());
  ExpectNear(got, ProjectorReference(t, s, EmbeddingsReference(t, s, px), 1), 1e-4, "image_features");
}

TEST(VisionEncoder, SiglipFullStrategyKeepsEveryPatchWithPatchBias) {
  TinySpec s;
  s.siglip = true;
  s.strategy = "full";
  Named t = TinyTensors(s);
  Loaded l = Write(s, t);
  const Tensor px = Pixels();
  ExpectNear(Encode(l, px), ProjectorReference(t, s, EmbeddingsReference(t, s, px), 0), 1e-4, "image_features");
}

TEST(VisionEncoder, ProjectorWithoutBias) {
  TinySpec s;
  s.projector_bias = false;
  Named t = TinyTensors(s);
  Loaded l = Write(s, t);
  const Tensor px = Pixels();
  ExpectNear(Encode(l, px), ProjectorReference(t, s, EmbeddingsReference(t, s, px), 1), 1e-4, "image_features");
}

// v5 names ("model.vision_tower.vision_model.", "model.multi_modal_projector.")
// and the flattened tower of newer transformers give the same features.
TEST(VisionEncoder, AllTensorNameLayoutsGiveTheSameFeatures) {
  TinySpec v4;
  v4.feature_layer = -1;
  const std::vector<float> want = Encode(Write(v4, TinyTensors(v4)), Pixels());
  ASSERT_FALSE(want.empty());
  for (const auto& [tower, projector] : std::vector<std::pair<std::string, std::string>>{
           {"model.vision_tower.vision_model.", "model.multi_modal_projector."},
           {"model.vision_tower.", "model.multi_modal_projector."},
           {"vision_tower.", "multi_modal_projector."}}) {
    TinySpec s = v4;
    s.tower_prefix = tower;
    s.projector_prefix = projector;
    const std::vector<float> got = Encode(Write(s, TinyTensors(s)), Pixels());
    EXPECT_EQ(got, want) << "layout " << tower << " / " << projector;
  }
}

// Selecting hidden_states[-2] of a 2-layer tower runs (and loads) one layer:
// the last layer's tensors may be absent. Its output differs from [-1].
TEST(VisionEncoder, FeatureLayerRunsOnlyTheLayersItNeeds) {
  TinySpec s;
  s.feature_layer = -2;
  Named t = TinyTensors(s);
  const std::vector<float> with_all = Encode(Write(s, t), Pixels());
  std::erase_if(t, [](const auto& e) { return e.first.find("encoder.layers.1.") != std::string::npos; });
  const std::vector<float> without_last = Encode(Write(s, t), Pixels());
  EXPECT_EQ(with_all, without_last);

  TinySpec last = s;
  last.feature_layer = -1;
  EXPECT_NE(Encode(Write(last, TinyTensors(last)), Pixels()), with_all);
  // hidden_states[1] and [-2] are the same state for a 2-layer tower.
  TinySpec one = s;
  one.feature_layer = 1;
  EXPECT_EQ(Encode(Write(one, TinyTensors(one)), Pixels()), with_all);
}

// Weights stay in their stored dtype: a BF16 checkpoint whose values are
// exactly the BF16 roundings of an F32 one gives the same features.
TEST(VisionEncoder, Bf16WeightsMatchTheirF32Values) {
  TinySpec s;
  s.feature_layer = -1;
  Named f32 = TinyTensors(s), bf16;
  for (auto& [name, x] : f32) {
    float* p = x.mutable_data_as<float>();
    Tensor b = Tensor::Zeros(DType::kBF16, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
      b.mutable_data_as<uint16_t>()[i] = F32ToBf16(p[i]);
      p[i] = Bf16ToF32(F32ToBf16(p[i]));
    }
    bf16.emplace_back(name, b);
  }
  ExpectNear(Encode(Write(s, bf16), Pixels()), Encode(Write(s, f32), Pixels()), 1e-5, "bf16 vs f32");
}

TEST(VisionEncoder, MissingTensorNamesFileAndTensor) {
  TinySpec s;
  Named t = TinyTensors(s);
  Remove(t, "vision_tower.vision_model.pre_layrnorm.bias");
  Loaded l = Write(s, t);
  auto enc = VisionEncoder::Load(*l.checkpoint, l.config);
  ASSERT_FALSE(enc.ok());
  EXPECT_EQ(enc.status().code(), StatusCode::kNotFound);
  EXPECT_NE(enc.status().message().find(l.path), std::string::npos) << enc.status().message();
  EXPECT_NE(enc.status().message().find("'vision_tower.vision_model.pre_layrnorm.bias' is missing"), std::string::npos)
      << enc.status().message();
  EXPECT_EQ(enc.status().message().find('\n'), std::string::npos);
}

TEST(VisionEncoder, MissingProjectorIsNotFound) {
  TinySpec s;
  Named t = TinyTensors(s);
  Remove(t, "multi_modal_projector.linear_1.weight");
  Loaded l = Write(s, t);
  auto enc = VisionEncoder::Load(*l.checkpoint, l.config);
  ASSERT_FALSE(enc.ok());
  EXPECT_EQ(enc.status().code(), StatusCode::kNotFound);
  EXPECT_NE(enc.status().message().find("multi_modal_projector.linear_1.weight"), std::string::npos)
      << enc.status().message();
}

TEST(VisionEncoder, MissingSiglipPatchBiasIsNotFound) {
  TinySpec s;
  s.siglip = true;
  Named t = TinyTensors(s);
  Remove(t, "vision_tower.vision_model.embeddings.patch_embedding.bias");
  Loaded l = Write(s, t);
  auto enc = VisionEncoder::Load(*l.checkpoint, l.config);
  ASSERT_FALSE(enc.ok());
  EXPECT_NE(enc.status().message().find("patch_embedding.bias"), std::string::npos) << enc.status().message();
}

TEST(VisionEncoder, WrongShapeNamesTensorAndBothShapes) {
  TinySpec s;
  s.feature_layer = -1;
  Named t = TinyTensors(s);
  std::mt19937 rng(3);
  Find(t, "vision_tower.vision_model.encoder.layers.1.mlp.fc1.weight") = Random({kFf, kHidden + 1}, rng);
  Loaded l = Write(s, t);
  auto enc = VisionEncoder::Load(*l.checkpoint, l.config);
  ASSERT_FALSE(enc.ok());
  EXPECT_EQ(enc.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = enc.status().message();
  EXPECT_NE(m.find(l.path + ": tensor 'vision_tower.vision_model.encoder.layers.1.mlp.fc1.weight' has shape [16, 9]"),
            std::string::npos) << m;
  EXPECT_NE(m.find("[16, 8]"), std::string::npos) << m;
}

TEST(VisionEncoder, WrongPatchConvShapeIsRejected) {
  TinySpec s;
  Named t = TinyTensors(s);
  std::mt19937 rng(3);
  // Same element count as [8, 3, 4, 4] but not the conv layout the config implies.
  Find(t, "vision_tower.vision_model.embeddings.patch_embedding.weight") = Random({kHidden, kC * kPatch * kPatch}, rng);
  Loaded l = Write(s, t);
  auto enc = VisionEncoder::Load(*l.checkpoint, l.config);
  ASSERT_FALSE(enc.ok());
  EXPECT_NE(enc.status().message().find("[8, 3, 4, 4]"), std::string::npos) << enc.status().message();
}

TEST(VisionEncoder, WrongProjectorWidthIsRejected) {
  TinySpec s;
  Named t = TinyTensors(s);
  std::mt19937 rng(3);
  Find(t, "multi_modal_projector.linear_2.weight") = Random({s.text_hidden, s.text_hidden + 2}, rng);
  Loaded l = Write(s, t);
  auto enc = VisionEncoder::Load(*l.checkpoint, l.config);
  ASSERT_FALSE(enc.ok());
  EXPECT_NE(enc.status().message().find("'multi_modal_projector.linear_2.weight' has shape [12, 14]"), std::string::npos)
      << enc.status().message();
}

TEST(VisionEncoder, IntegerWeightIsRejected) {
  TinySpec s;
  Named t = TinyTensors(s);
  Find(t, "vision_tower.vision_model.embeddings.position_embedding.weight") = Tensor::Zeros(DType::kI32, {kPatches + 1, kHidden});
  Loaded l = Write(s, t);
  auto enc = VisionEncoder::Load(*l.checkpoint, l.config);
  ASSERT_FALSE(enc.ok());
  EXPECT_NE(enc.status().message().find("has dtype I32"), std::string::npos) << enc.status().message();
}

TEST(VisionEncoder, BadPixelValuesAreRejected) {
  TinySpec s;
  Loaded l = Write(s, TinyTensors(s));
  auto enc = VisionEncoder::Load(*l.checkpoint, l.config);
  ASSERT_TRUE(enc.ok()) << enc.status().message();
  std::vector<float> out(static_cast<size_t>((*enc)->num_image_tokens() * s.text_hidden));
  const Status wrong_size = (*enc)->Encode(Tensor::Zeros(DType::kF32, {kC, kImage + 1, kImage}), out.data());
  EXPECT_EQ(wrong_size.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_size.message().find("[3, 8, 8]"), std::string::npos) << wrong_size.message();
  const Status wrong_dtype = (*enc)->Encode(Tensor::Zeros(DType::kF16, {kC, kImage, kImage}), out.data());
  EXPECT_EQ(wrong_dtype.code(), StatusCode::kInvalidArgument) << wrong_dtype.message();
  // A batch of one [1, 3, H, W] is accepted.
  EXPECT_TRUE((*enc)->Encode(Tensor::Zeros(DType::kF32, {1, kC, kImage, kImage}), out.data()).ok());
}

TEST(VisionEncoder, UnknownActivationIsUnsupported) {
  TinySpec s;
  s.projector_act = "mish";
  Loaded l = Write(s, TinyTensors(s));
  auto enc = VisionEncoder::Load(*l.checkpoint, l.config);
  ASSERT_FALSE(enc.ok());
  EXPECT_EQ(enc.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(enc.status().message().find("projector_hidden_act 'mish'"), std::string::npos) << enc.status().message();
}

// Buffers are sized from the config before tensors bound them, so absurd
// sizes are refused instead of overflowing or exhausting memory.
TEST(VisionEncoder, ImplausibleImageSizeIsRejected) {
  TinySpec s;
  Loaded l = Write(s, TinyTensors(s));
  // Built directly: config.json parsing refuses this too, but Load must not
  // rely on every caller's config having come through the parser.
  ModelConfig config = l.config;
  config.vision->image_size = int64_t{1} << 40;
  config.vision->patch_size = 1;
  auto enc = VisionEncoder::Load(*l.checkpoint, config);
  ASSERT_FALSE(enc.ok());
  EXPECT_EQ(enc.status().code(), StatusCode::kInvalidArgument) << enc.status().message();
  EXPECT_NE(enc.status().message().find("implausible"), std::string::npos) << enc.status().message();
}

// Checkpoints written by `bitlens synth` (both towers, both name layouts)
// load and give finite features of the advertised size.
TEST(VisionEncoder, EncodesSynthesizedTinyLlava) {
  // The models live beside ScratchDir(), which every call to it empties.
  const std::string models = testing::ScratchDir() + "-models";
  std::filesystem::create_directories(models);
  for (const char* family : {"llava", "llava-siglip"}) {
    for (const char* layout : {"v4", "v5"}) {
      const std::string dir = models + "/" + family + "-" + layout;
      const testing::CliResult r = testing::RunCli(std::string("synth --family ") + family +
                                                   " --preset tiny --layout " + layout + " -o " + dir);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      auto config = LoadModelConfig(dir);
      ASSERT_TRUE(config.ok()) << config.status().message();
      auto ckpt = Checkpoint::Open(dir);
      ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
      auto enc = VisionEncoder::Load(*ckpt, *config);
      ASSERT_TRUE(enc.ok()) << dir << ": " << enc.status().message();
      EXPECT_EQ((*enc)->num_image_tokens(), config->image_seq_length()) << dir;
      const VisionConfig& v = *config->vision;
      std::mt19937 rng(5);
      const Tensor px = Random({v.num_channels, v.image_size, v.image_size}, rng, 1.0f);
      std::vector<float> out(static_cast<size_t>((*enc)->num_image_tokens() * config->text.hidden_size), NAN);
      const Status s = (*enc)->Encode(px, out.data());
      ASSERT_TRUE(s.ok()) << s.message();
      const auto bad = std::find_if(out.begin(), out.end(), [](float x) { return !std::isfinite(x); });
      EXPECT_EQ(bad, out.end()) << dir << ": non-finite feature at " << (bad - out.begin());
    }
  }
}

}  // namespace
}  // namespace bitlens
