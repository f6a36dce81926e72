// The tensors `bitlens synth` writes for a tiny LLaVA, against a list written
// out by hand from transformers' module structure (LlavaForConditionalGeneration
// = CLIPVisionModel + LlavaMultiModalProjector + LlamaForCausalLM), in the
// v4 names of Hub checkpoints and the v5 names.
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/synth.h"
#include "test_paths.h"

namespace bitlens {
namespace {

using Expected = std::vector<std::pair<std::string, Shape>>;

// Tiny preset: CLIP hidden 32, intermediate 64, 2 layers, 32 px / 8 px patches
// (16 patches + class = 17 positions); Llama hidden 64, intermediate 128,
// 2 layers, 4 heads of 16 over 2 KV heads, vocab 512; untied lm_head.
Expected TinyLlavaV4() {
  Expected e = {
      {"vision_tower.vision_model.embeddings.class_embedding", {32}},
      {"vision_tower.vision_model.embeddings.patch_embedding.weight", {32, 3, 8, 8}},
      {"vision_tower.vision_model.embeddings.position_embedding.weight", {17, 32}},
      {"vision_tower.vision_model.pre_layrnorm.weight", {32}},
      {"vision_tower.vision_model.pre_layrnorm.bias", {32}},
  };
  for (const char* l : {"0", "1"}) {
    const std::string p = std::string("vision_tower.vision_model.encoder.layers.") + l + ".";
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      e.push_back({p + "self_attn." + proj + ".weight", {32, 32}});
      e.push_back({p + "self_attn." + proj + ".bias", {32}});
    }
    e.push_back({p + "layer_norm1.weight", {32}});
    e.push_back({p + "layer_norm1.bias", {32}});
    e.push_back({p + "mlp.fc1.weight", {64, 32}});
    e.push_back({p + "mlp.fc1.bias", {64}});
    e.push_back({p + "mlp.fc2.weight", {32, 64}});
    e.push_back({p + "mlp.fc2.bias", {32}});
    e.push_back({p + "layer_norm2.weight", {32}});
    e.push_back({p + "layer_norm2.bias", {32}});
  }
  e.push_back({"vision_tower.vision_model.post_layernorm.weight", {32}});
  e.push_back({"vision_tower.vision_model.post_layernorm.bias", {32}});
  e.push_back({"multi_modal_projector.linear_1.weight", {64, 32}});
  e.push_back({"multi_modal_projector.linear_1.bias", {64}});
  e.push_back({"multi_modal_projector.linear_2.weight", {64, 64}});
  e.push_back({"multi_modal_projector.linear_2.bias", {64}});
  e.push_back({"language_model.model.embed_tokens.weight", {512, 64}});
  for (const char* l : {"0", "1"}) {
    const std::string p = std::string("language_model.model.layers.") + l + ".";
    e.push_back({p + "self_attn.q_proj.weight", {64, 64}});
    e.push_back({p + "self_attn.k_proj.weight", {32, 64}});
    e.push_back({p + "self_attn.v_proj.weight", {32, 64}});
    e.push_back({p + "self_attn.o_proj.weight", {64, 64}});
    e.push_back({p + "mlp.gate_proj.weight", {128, 64}});
    e.push_back({p + "mlp.up_proj.weight", {128, 64}});
    e.push_back({p + "mlp.down_proj.weight", {64, 128}});
    e.push_back({p + "input_layernorm.weight", {64}});
    e.push_back({p + "post_attention_layernorm.weight", {64}});
  }
  e.push_back({"language_model.model.norm.weight", {64}});
  e.push_back({"language_model.lm_head.weight", {512, 64}});
  return e;
}

// v5: everything moves under `model.` except the head, which loses its prefix.
std::string ToV5(const std::string& v4) {
  if (v4 == "language_model.lm_head.weight") return "lm_head.weight";
  if (v4.rfind("language_model.model.", 0) == 0) return "model.language_model." + v4.substr(21);
  return "model." + v4;
}

void ExpectCheckpointHolds(const std::string& dir, const Expected& expected, DType dtype) {
  auto ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().message();
  std::map<std::string, Shape> want(expected.begin(), expected.end());
  ASSERT_EQ(want.size(), expected.size()) << "the hand-written list repeats a name";
  for (const auto& name : ckpt->Names()) {
    auto it = want.find(name);
    if (it == want.end()) {
      ADD_FAILURE() << "unexpected tensor " << name;
      continue;
    }
    const TensorEntry* e = ckpt->Find(name);
    EXPECT_EQ(ShapeToString(e->shape), ShapeToString(it->second)) << name;
    EXPECT_EQ(DTypeName(e->dtype), DTypeName(dtype)) << name;
    want.erase(it);
  }
  for (const auto& [name, shape] : want) ADD_FAILURE() << "missing tensor " << name << " " << ShapeToString(shape);
}

TEST(SynthLayout, TinyLlavaV4HasExactlyTheTensorsTransformersSaves) {
  const std::string dir = testing::ScratchDir() + "/llava";
  SynthOptions o;
  o.family = SynthFamily::kLlava;
  o.output_dir = dir;
  auto r = Synthesize(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const Expected expected = TinyLlavaV4();
  EXPECT_EQ(expected.size(), 64u);
  ExpectCheckpointHolds(dir, expected, DType::kF32);
}

TEST(SynthLayout, TinyLlavaV5MovesEverythingUnderModelButTheHead) {
  const std::string dir = testing::ScratchDir() + "/llava5";
  SynthOptions o;
  o.family = SynthFamily::kLlava;
  o.layout = HfLayout::kV5;
  o.dtype = DType::kBF16;
  o.output_dir = dir;
  auto r = Synthesize(o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  Expected expected;
  for (const auto& [name, shape] : TinyLlavaV4()) expected.push_back({ToV5(name), shape});
  ExpectCheckpointHolds(dir, expected, DType::kBF16);
}

TEST(SynthLayout, Phi3UsesFusedProjectionsAndDropsTiedHead) {
  SynthOptions o;
  o.family = SynthFamily::kPhi3;
  auto plan = PlanSynth(o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  std::map<std::string, Shape> got;
  for (const auto& t : plan->tensors) got[t.name] = t.shape;
  // 4 heads x 16 (q) + 2 x 2 KV heads x 16 (k, v) = 128 rows; gate|up = 2 x 128.
  EXPECT_EQ(ShapeToString(got["model.layers.0.self_attn.qkv_proj.weight"]), ShapeToString({128, 64}));
  EXPECT_EQ(ShapeToString(got["model.layers.1.mlp.gate_up_proj.weight"]), ShapeToString({256, 64}));
  EXPECT_EQ(ShapeToString(got["model.layers.1.mlp.down_proj.weight"]), ShapeToString({64, 128}));
  EXPECT_EQ(got.count("model.layers.0.self_attn.q_proj.weight"), 0u);
  EXPECT_EQ(got.count("lm_head.weight"), 0u) << "tied lm_head must not be saved";
  EXPECT_EQ(got.size(), 2u + 2 * 6);  // embed, norm, 6 per layer
}

TEST(SynthLayout, SiglipTowerHasPatchBiasAndNoClassTokenOrHead) {
  SynthOptions o;
  o.family = SynthFamily::kLlavaSiglip;
  auto plan = PlanSynth(o);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  std::map<std::string, Shape> got;
  for (const auto& t : plan->tensors) got[t.name] = t.shape;
  const std::string emb = "vision_tower.vision_model.embeddings.";
  EXPECT_EQ(ShapeToString(got[emb + "patch_embedding.bias"]), ShapeToString({32}));
  EXPECT_EQ(ShapeToString(got[emb + "position_embedding.weight"]), ShapeToString({16, 32}));
  EXPECT_EQ(got.count(emb + "class_embedding"), 0u);
  EXPECT_EQ(got.count("vision_tower.vision_model.pre_layrnorm.weight"), 0u);
  EXPECT_EQ(ShapeToString(got["vision_tower.vision_model.post_layernorm.weight"]), ShapeToString({32}));
  for (const auto& [name, shape] : got) EXPECT_EQ(name.find(".head."), std::string::npos) << name;
  EXPECT_EQ(plan->config.vision_feature_select_strategy, "full");
  EXPECT_EQ(plan->config.image_seq_length(), 16);
}

}  // namespace
}  // namespace bitlens

namespace bitlens {
namespace {

// Every layout round-trips through DetectHfLayout, and only the prefixes move.
TEST(SynthLayout, EveryLayoutIsDetectedFromItsNames) {
  SynthOptions o;
  o.family = SynthFamily::kLlava;
  auto plan = PlanSynth(o);
  ASSERT_TRUE(plan.ok());
  for (HfLayout layout : {HfLayout::kV4, HfLayout::kV5, HfLayout::kV5Module, HfLayout::kV5Saved}) {
    auto specs = HfTensorLayout(plan->config, layout);
    ASSERT_TRUE(specs.ok());
    std::vector<std::string> names;
    for (const auto& s : *specs) names.push_back(s.name);
    EXPECT_EQ(HfLayoutName(DetectHfLayout(names)), HfLayoutName(layout));
    EXPECT_EQ(specs->size(), 64u);
  }
  auto module = HfTensorLayout(plan->config, HfLayout::kV5Module);
  auto saved = HfTensorLayout(plan->config, HfLayout::kV5Saved);
  EXPECT_EQ((*module)[0].name, "model.vision_tower.embeddings.class_embedding");
  EXPECT_EQ((*saved)[0].name, "vision_tower.embeddings.class_embedding");
  EXPECT_EQ(saved->back().name, "language_model.lm_head.weight");
}

}  // namespace
}  // namespace bitlens
