// The model goldens under tests/golden/ are well-formed: bitlens' config parser reads every
// config.json transformers wrote, tensor names and shapes agree with the parsed config, and the
// golden tensors agree with each other. Catches a broken regeneration before any model test runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "formats/hf_config.h"
#include "golden_case.h"

namespace bitlens {
namespace {

using testing::GoldenCase;
using testing::LoadGoldenCase;

// Written by tests/conformance/make_model_goldens.py; listed so a missing case fails here.
const char* const kModelCases[] = {
    "llava_clip_llama",    "llava_siglip_phi3",     "phi3_longrope_short", "phi3_longrope_long",
    "phi3_longrope_cross", "llama_llama3rope_tied", "llama_linear_rope",   "llama_bf16_weights",
    "phi3_f16_weights",
};

std::vector<std::string> ModelCases() { return {std::begin(kModelCases), std::end(kModelCases)}; }

class GoldenFormat : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto c = LoadGoldenCase(GetParam());
    ASSERT_TRUE(c.ok()) << c.status().message() << " (regenerate with `make conformance`)";
    gc_ = std::move(*c);
    auto cfg = LoadModelConfig(gc_.model_dir());
    ASSERT_TRUE(cfg.ok()) << gc_.model_dir() << ": bitlens cannot parse config.json: " << cfg.status().message();
    cfg_ = *cfg;
    auto ck = Checkpoint::Open(gc_.model_dir());
    ASSERT_TRUE(ck.ok()) << ck.status().message();
    weights_ = std::move(*ck);
    const std::string wd = gc_.meta.value("weights_dtype", std::string("F32"));
    auto dt = DTypeFromName(wd);
    ASSERT_TRUE(dt.has_value()) << "golden.json weights_dtype '" << wd << "'";
    weights_dtype_ = *dt;
  }

  // Shape of a model tensor, or a failure naming it.
  void ExpectShape(const std::string& name, const Shape& want) {
    const TensorEntry* e = weights_.Find(name);
    ASSERT_NE(e, nullptr) << gc_.name << ": model.safetensors lacks '" << name << "'";
    EXPECT_EQ(e->dtype, weights_dtype_) << name << " is " << DTypeName(e->dtype);
    EXPECT_EQ(e->shape, want) << name << " is " << ShapeToString(e->shape) << ", config implies "
                              << ShapeToString(want);
  }

  void ExpectGolden(const std::string& name, DType dtype, const Shape& want) {
    const TensorEntry* e = gc_.tensors.Find(name);
    ASSERT_NE(e, nullptr) << gc_.name << ": golden.safetensors lacks '" << name << "'";
    EXPECT_EQ(e->dtype, dtype) << name;
    EXPECT_EQ(e->shape, want) << name << " is " << ShapeToString(e->shape) << ", expected " << ShapeToString(want);
  }

  GoldenCase gc_;
  ModelConfig cfg_;
  Checkpoint weights_;
  DType weights_dtype_ = DType::kF32;  // of model.safetensors; goldens are always F32
};

TEST_P(GoldenFormat, ConfigParsesAndMatchesWhatTransformersWrote) {
  const auto& m = gc_.meta;
  EXPECT_EQ(cfg_.architecture, m["architecture"].get<std::string>());
  const char* dtype_name = weights_dtype_ == DType::kBF16 ? "bfloat16"
                           : weights_dtype_ == DType::kF16 ? "float16"
                                                           : "float32";
  EXPECT_EQ(cfg_.torch_dtype, dtype_name);
  const auto& rp = m["config_keys"]["rope_parameters"];
  ASSERT_TRUE(rp.is_object()) << "golden.json config_keys.rope_parameters";
  EXPECT_EQ(cfg_.text.rope.type, rp["rope_type"].get<std::string>());
  EXPECT_DOUBLE_EQ(cfg_.text.rope.theta, rp["rope_theta"].get<double>());
  EXPECT_EQ(cfg_.text.tie_word_embeddings, m["config_keys"]["tie_word_embeddings"].get<bool>());
  // transformers 5 writes partial_rotary_factor inside rope_parameters (and, for phi3, at the top level).
  if (rp.contains("partial_rotary_factor")) {
    EXPECT_DOUBLE_EQ(cfg_.text.partial_rotary_factor,
                     rp["partial_rotary_factor"].get<double>());
  }
  if (rp.contains("factor")) {
    EXPECT_DOUBLE_EQ(cfg_.text.rope.factor, rp["factor"].get<double>());
  }
  if (rp.contains("original_max_position_embeddings")) {
    EXPECT_EQ(cfg_.text.rope.original_max_position_embeddings, rp["original_max_position_embeddings"].get<int64_t>());
  }
  if (cfg_.text.rope.type == "llama3") {
    EXPECT_DOUBLE_EQ(cfg_.text.rope.low_freq_factor, rp["low_freq_factor"].get<double>());
    EXPECT_DOUBLE_EQ(cfg_.text.rope.high_freq_factor, rp["high_freq_factor"].get<double>());
  }
  if (cfg_.text.rope.type == "longrope") {
    EXPECT_EQ(cfg_.text.rope.short_factor, rp["short_factor"].get<std::vector<double>>());
    EXPECT_EQ(cfg_.text.rope.long_factor, rp["long_factor"].get<std::vector<double>>());
    const auto& lr = m["longrope"];
    EXPECT_EQ(cfg_.text.rope.original_max_position_embeddings, lr["original_max_position_embeddings"].get<int64_t>());
    EXPECT_EQ(cfg_.text.max_position_embeddings, lr["max_position_embeddings"].get<int64_t>());
    const size_t rotary_half = static_cast<size_t>(cfg_.text.head_dim * cfg_.text.partial_rotary_factor) / 2;
    EXPECT_EQ(cfg_.text.rope.short_factor.size(), rotary_half);
  }
  if (gc_.is_vlm()) {
    ASSERT_TRUE(cfg_.is_vlm());
    EXPECT_EQ(cfg_.image_token_index, gc_.image_token_index());
    EXPECT_EQ(cfg_.image_seq_length(), gc_.n_image_tokens());
    EXPECT_EQ(cfg_.vision_feature_layer, m["vlm"]["vision_feature_layer"].get<int64_t>());
    EXPECT_EQ(cfg_.vision_feature_select_strategy, m["vlm"]["vision_feature_select_strategy"].get<std::string>());
    EXPECT_EQ(cfg_.vision->model_type, m["vlm"]["vision_model_type"].get<std::string>());
    auto v4 = LoadModelConfig(gc_.model_v4_dir());
    ASSERT_TRUE(v4.ok()) << v4.status().message();
  } else {
    EXPECT_FALSE(cfg_.is_vlm());
  }
}

// config_v4.json holds the same config in transformers 4.x spelling (rope_theta + rope_scaling,
// torch_dtype); both spellings must parse to the same model.
TEST_P(GoldenFormat, V4ConfigSpellingParsesToTheSameConfig) {
  const std::string path = gc_.dir + "/config_v4.json";
  auto text = ReadTextFile(path);
  ASSERT_TRUE(text.ok()) << text.status().message();
  auto v4 = ParseModelConfig(*text, path);
  ASSERT_TRUE(v4.ok()) << "bitlens cannot parse " << path << ": " << v4.status().message();
  const TextConfig &a = cfg_.text, &b = v4->text;
  EXPECT_EQ(v4->model_type, cfg_.model_type);
  EXPECT_EQ(v4->torch_dtype, cfg_.torch_dtype);
  EXPECT_EQ(b.model_type, a.model_type);
  EXPECT_EQ(b.vocab_size, a.vocab_size);
  EXPECT_EQ(b.hidden_size, a.hidden_size);
  EXPECT_EQ(b.intermediate_size, a.intermediate_size);
  EXPECT_EQ(b.num_hidden_layers, a.num_hidden_layers);
  EXPECT_EQ(b.num_attention_heads, a.num_attention_heads);
  EXPECT_EQ(b.num_key_value_heads, a.num_key_value_heads);
  EXPECT_EQ(b.head_dim, a.head_dim);
  EXPECT_EQ(b.max_position_embeddings, a.max_position_embeddings);
  EXPECT_DOUBLE_EQ(b.rms_norm_eps, a.rms_norm_eps);
  EXPECT_DOUBLE_EQ(b.partial_rotary_factor, a.partial_rotary_factor);
  EXPECT_EQ(b.tie_word_embeddings, a.tie_word_embeddings);
  EXPECT_EQ(b.rope.type, a.rope.type);
  EXPECT_DOUBLE_EQ(b.rope.theta, a.rope.theta);
  EXPECT_DOUBLE_EQ(b.rope.factor, a.rope.factor);
  EXPECT_DOUBLE_EQ(b.rope.low_freq_factor, a.rope.low_freq_factor);
  EXPECT_DOUBLE_EQ(b.rope.high_freq_factor, a.rope.high_freq_factor);
  EXPECT_EQ(b.rope.original_max_position_embeddings, a.rope.original_max_position_embeddings);
  EXPECT_EQ(b.rope.short_factor, a.rope.short_factor);
  EXPECT_EQ(b.rope.long_factor, a.rope.long_factor);
  EXPECT_EQ(b.rope.attention_factor, a.rope.attention_factor);
  ASSERT_EQ(v4->is_vlm(), cfg_.is_vlm());
  if (cfg_.is_vlm()) {
    EXPECT_EQ(v4->image_token_index, cfg_.image_token_index);
    EXPECT_EQ(v4->image_seq_length(), cfg_.image_seq_length());
    EXPECT_EQ(v4->vision_feature_layer, cfg_.vision_feature_layer);
    EXPECT_EQ(v4->vision_feature_select_strategy, cfg_.vision_feature_select_strategy);
    EXPECT_EQ(v4->vision->model_type, cfg_.vision->model_type);
    EXPECT_EQ(v4->vision->image_size, cfg_.vision->image_size);
  }
}

TEST_P(GoldenFormat, WeightNamesAndShapesFollowTheConfig) {
  const TextConfig& t = cfg_.text;
  const std::string lm = gc_.is_vlm() ? "language_model.model." : "model.";
  const std::string head = gc_.is_vlm() ? "language_model.lm_head.weight" : "lm_head.weight";
  const int64_t q = t.num_attention_heads * t.head_dim, kv = t.num_key_value_heads * t.head_dim;
  ExpectShape(lm + "embed_tokens.weight", {t.vocab_size, t.hidden_size});
  ExpectShape(lm + "norm.weight", {t.hidden_size});
  EXPECT_EQ(weights_.Has(head), !t.tie_word_embeddings) << head << " vs tie_word_embeddings";
  if (!t.tie_word_embeddings) ExpectShape(head, {t.vocab_size, t.hidden_size});
  for (int64_t l = 0; l < t.num_hidden_layers; ++l) {
    const std::string p = lm + "layers." + std::to_string(l) + ".";
    ExpectShape(p + "input_layernorm.weight", {t.hidden_size});
    ExpectShape(p + "post_attention_layernorm.weight", {t.hidden_size});
    ExpectShape(p + "self_attn.o_proj.weight", {t.hidden_size, q});
    ExpectShape(p + "mlp.down_proj.weight", {t.hidden_size, t.intermediate_size});
    if (t.model_type == "phi3") {  // fused projections
      ExpectShape(p + "self_attn.qkv_proj.weight", {q + 2 * kv, t.hidden_size});
      ExpectShape(p + "mlp.gate_up_proj.weight", {2 * t.intermediate_size, t.hidden_size});
    } else {
      ExpectShape(p + "self_attn.q_proj.weight", {q, t.hidden_size});
      ExpectShape(p + "self_attn.k_proj.weight", {kv, t.hidden_size});
      ExpectShape(p + "self_attn.v_proj.weight", {kv, t.hidden_size});
      ExpectShape(p + "mlp.gate_proj.weight", {t.intermediate_size, t.hidden_size});
      ExpectShape(p + "mlp.up_proj.weight", {t.intermediate_size, t.hidden_size});
    }
  }
  EXPECT_FALSE(weights_.Has(lm + "layers." + std::to_string(t.num_hidden_layers) + ".input_layernorm.weight"))
      << "more decoder layers in the file than num_hidden_layers";

  if (!gc_.is_vlm()) return;
  const VisionConfig& v = *cfg_.vision;
  const std::string vt = "vision_tower.";  // transformers 5 writes the tower without 'vision_model.'
  const int64_t positions = v.num_patches() + (v.has_class_token() ? 1 : 0);
  ExpectShape(vt + "embeddings.patch_embedding.weight", {v.hidden_size, v.num_channels, v.patch_size, v.patch_size});
  ExpectShape(vt + "embeddings.position_embedding.weight", {positions, v.hidden_size});
  if (v.has_class_token()) {
    ExpectShape(vt + "embeddings.class_embedding", {v.hidden_size});
    ExpectShape(vt + "pre_layrnorm.weight", {v.hidden_size});
  } else {
    ExpectShape(vt + "embeddings.patch_embedding.bias", {v.hidden_size});
  }
  ExpectShape(vt + "post_layernorm.weight", {v.hidden_size});
  for (int64_t l = 0; l < v.num_hidden_layers; ++l) {
    const std::string p = vt + "encoder.layers." + std::to_string(l) + ".";
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      ExpectShape(p + "self_attn." + proj + ".weight", {v.hidden_size, v.hidden_size});
      ExpectShape(p + "self_attn." + proj + ".bias", {v.hidden_size});
    }
    ExpectShape(p + "mlp.fc1.weight", {v.intermediate_size, v.hidden_size});
    ExpectShape(p + "mlp.fc2.weight", {v.hidden_size, v.intermediate_size});
    ExpectShape(p + "layer_norm1.weight", {v.hidden_size});
    ExpectShape(p + "layer_norm2.weight", {v.hidden_size});
  }
  ExpectShape("multi_modal_projector.linear_1.weight", {t.hidden_size, v.hidden_size});
  ExpectShape("multi_modal_projector.linear_1.bias", {t.hidden_size});
  ExpectShape("multi_modal_projector.linear_2.weight", {t.hidden_size, t.hidden_size});

  // model_v4/: the same tensors, the tower moved under vision_tower.vision_model., bytes equal.
  auto v4 = Checkpoint::Open(gc_.model_v4_dir());
  ASSERT_TRUE(v4.ok()) << v4.status().message();
  EXPECT_EQ(v4->Names().size(), weights_.Names().size());
  for (const std::string& name : weights_.Names()) {
    std::string v4_name = name;
    if (name.rfind(vt, 0) == 0) v4_name = "vision_tower.vision_model." + name.substr(vt.size());
    auto a = weights_.Get(name);
    auto b = v4->Get(v4_name);
    ASSERT_TRUE(a.ok() && b.ok()) << "model_v4 lacks '" << v4_name << "' for '" << name << "'";
    ASSERT_EQ(a->shape(), b->shape()) << v4_name;
    EXPECT_EQ(0, std::memcmp(a->data(), b->data(), a->nbytes())) << v4_name << " differs from " << name;
  }
}

TEST_P(GoldenFormat, GoldenTensorsAgreeWithTheConfigAndEachOther) {
  const TextConfig& t = cfg_.text;
  const auto& m = gc_.meta;
  const int64_t n_tokens = m["input"]["n_tokens"].get<int64_t>();
  const int64_t n_new = m["generation"]["new_tokens"].get<int64_t>();
  ExpectGolden("input_ids", DType::kI64, {n_tokens});
  ExpectGolden("logits", DType::kF32, {n_tokens, t.vocab_size});
  ExpectGolden("greedy_ids", DType::kI64, {n_new});
  ExpectGolden("greedy_logits", DType::kF32, {n_new, t.vocab_size});
  ExpectGolden("text_hidden_states_all", DType::kF32, {t.num_hidden_layers + 1, n_tokens, t.hidden_size});
  if (HasFatalFailure()) return;

  // RoPE tables [positions, rotary_dim]; at position 0 cos is the attention factor, sin is 0.
  const int64_t rotary_dim = static_cast<int64_t>(t.head_dim * t.partial_rotary_factor);
  std::vector<std::pair<std::string, int64_t>> tables;
  double attention_factor = 1.0;
  if (t.rope.type == "longrope") {
    tables = {{"_short", t.rope.original_max_position_embeddings}, {"_long", t.max_position_embeddings}};
    attention_factor = m["longrope"]["attention_factor"].get<double>();
  } else {
    tables = {{"", n_tokens + n_new}};
  }
  for (const auto& [suffix, positions] : tables) {
    ExpectGolden("rope_cos" + suffix, DType::kF32, {positions, rotary_dim});
    ExpectGolden("rope_sin" + suffix, DType::kF32, {positions, rotary_dim});
    if (HasFatalFailure()) return;
    const Tensor cos = gc_.Get("rope_cos" + suffix), sin = gc_.Get("rope_sin" + suffix);
    for (int64_t j = 0; j < rotary_dim; ++j) {
      EXPECT_NEAR(cos.data_as<float>()[j], attention_factor, 1e-6) << "rope_cos" << suffix << "[0, " << j << "]";
      EXPECT_EQ(sin.data_as<float>()[j], 0.0f) << "rope_sin" << suffix << "[0, " << j << "]";
    }
  }

  const std::vector<int64_t> ids = gc_.input_ids();
  EXPECT_EQ(ids, m["input"]["input_ids"].get<std::vector<int64_t>>());
  for (int64_t id : ids) EXPECT_TRUE(id >= 0 && id < t.vocab_size) << id;

  // Each greedy id is the argmax of its step's logits; the first step's logits are the last
  // prompt position's.
  const std::vector<int64_t> greedy = gc_.greedy_ids();
  const Tensor gl = gc_.Get("greedy_logits");
  const Tensor logits = gc_.Get("logits");
  for (int64_t s = 0; s < n_new; ++s) {
    const float* row = gl.data_as<float>() + s * t.vocab_size;
    const int64_t arg = std::max_element(row, row + t.vocab_size) - row;
    EXPECT_EQ(arg, greedy[s]) << "step " << s;
  }
  EXPECT_TRUE(testing::FloatsNear("greedy_logits[0] vs logits[-1]", gl.data_as<float>(),
                                  logits.data_as<float>() + (n_tokens - 1) * t.vocab_size, t.vocab_size, 1e-4));

  if (!gc_.is_vlm()) return;
  const VisionConfig& v = *cfg_.vision;
  const int64_t n_img = gc_.n_image_tokens();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), gc_.image_token_index()), n_img);
  const int64_t positions = v.num_patches() + (v.has_class_token() ? 1 : 0);
  ExpectGolden("pixel_values", DType::kF32, {1, v.num_channels, v.image_size, v.image_size});
  ExpectGolden("image_features", DType::kF32, {n_img, t.hidden_size});
  ExpectGolden("vision_hidden_states", DType::kF32, {positions, v.hidden_size});
  ExpectGolden("vision_hidden_states_all", DType::kF32, {v.num_hidden_layers + 1, positions, v.hidden_size});
  if (HasFatalFailure()) return;
  // vision_hidden_states is the selected entry of vision_hidden_states_all.
  const int64_t layer = cfg_.vision_feature_layer < 0 ? v.num_hidden_layers + 1 + cfg_.vision_feature_layer
                                                      : cfg_.vision_feature_layer;
  const Tensor all = gc_.Get("vision_hidden_states_all");
  const Tensor sel = gc_.Get("vision_hidden_states");
  EXPECT_EQ(0, std::memcmp(sel.data(), all.data_as<float>() + layer * positions * v.hidden_size, sel.nbytes()));
}

INSTANTIATE_TEST_SUITE_P(Models, GoldenFormat, ::testing::ValuesIn(ModelCases()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
}  // namespace bitlens
