// model/synth_layout: tensor names and shapes as the transformers modules
// define them (nn.Linear weight is [out, in]; Conv2d is [out, in, kh, kw]).
#include "model/synth_layout.h"

namespace bitlens {
namespace {

// Bounds far above every real model, low enough that no tensor's element
// count, nor the sum over all tensors, can overflow int64: widths (hidden,
// intermediate, heads x head_dim) <= 2^20, vocabulary and image positions
// <= 2^24, patch side <= 1024, channels <= 16, layers <= 1024.
constexpr int64_t kMaxWidth = int64_t{1} << 20;
constexpr int64_t kMaxRows = int64_t{1} << 24;
constexpr int64_t kMaxLayers = 1024;

class LayoutBuilder {
 public:
  void Add(std::string name, Shape shape, TensorInit init = TensorInit::kNormal) {
    specs_.push_back({std::move(name), std::move(shape), init});
  }
  void Linear(const std::string& prefix, int64_t out, int64_t in, bool bias) {
    Add(prefix + ".weight", {out, in});
    if (bias) Add(prefix + ".bias", {out}, TensorInit::kZeros);
  }
  void LayerNorm(const std::string& prefix, int64_t dim) {
    Add(prefix + ".weight", {dim}, TensorInit::kOnes);
    Add(prefix + ".bias", {dim}, TensorInit::kZeros);
  }
  void RmsNorm(const std::string& prefix, int64_t dim) { Add(prefix + ".weight", {dim}, TensorInit::kOnes); }
  std::vector<TensorSpec> Take() { return std::move(specs_); }

 private:
  std::vector<TensorSpec> specs_;
};

// CLIPVisionTransformer / SiglipVisionTransformer under `prefix`
// ("...vision_model"); SigLIP's pooling head is not used by LLaVA and its
// config says vision_use_head=false.
void AddVisionTower(const VisionConfig& v, const std::string& prefix, LayoutBuilder* b) {
  const int64_t d = v.hidden_size, p = v.patch_size;
  const bool clip = v.model_type == "clip_vision_model";
  const std::string emb = prefix + ".embeddings";
  if (clip) b->Add(emb + ".class_embedding", {d});
  b->Add(emb + ".patch_embedding.weight", {d, v.num_channels, p, p});
  if (!clip) b->Add(emb + ".patch_embedding.bias", {d}, TensorInit::kZeros);
  b->Add(emb + ".position_embedding.weight", {v.num_patches() + (clip ? 1 : 0), d});
  if (clip) b->LayerNorm(prefix + ".pre_layrnorm", d);  // sic: transformers' spelling
  for (int64_t i = 0; i < v.num_hidden_layers; ++i) {
    const std::string l = prefix + ".encoder.layers." + std::to_string(i);
    // Module order differs (SigLIP declares its norms first); names do not.
    if (!clip) b->LayerNorm(l + ".layer_norm1", d);
    b->Linear(l + ".self_attn.k_proj", d, d, true);
    b->Linear(l + ".self_attn.v_proj", d, d, true);
    b->Linear(l + ".self_attn.q_proj", d, d, true);
    b->Linear(l + ".self_attn.out_proj", d, d, true);
    if (clip) b->LayerNorm(l + ".layer_norm1", d);
    if (!clip) b->LayerNorm(l + ".layer_norm2", d);
    b->Linear(l + ".mlp.fc1", v.intermediate_size, d, true);
    b->Linear(l + ".mlp.fc2", d, v.intermediate_size, true);
    if (clip) b->LayerNorm(l + ".layer_norm2", d);
  }
  b->LayerNorm(prefix + ".post_layernorm", d);
}

// LlamaModel / Phi3Model under `prefix` ("model", "language_model.model",
// "model.language_model").
void AddDecoder(const TextConfig& t, const std::string& prefix, LayoutBuilder* b) {
  const int64_t h = t.hidden_size, q = t.num_attention_heads * t.head_dim, kv = t.num_key_value_heads * t.head_dim;
  b->Add(prefix + ".embed_tokens.weight", {t.vocab_size, h});
  for (int64_t i = 0; i < t.num_hidden_layers; ++i) {
    const std::string l = prefix + ".layers." + std::to_string(i);
    if (t.model_type == "phi3") {
      b->Add(l + ".self_attn.o_proj.weight", {h, q});
      b->Add(l + ".self_attn.qkv_proj.weight", {q + 2 * kv, h});  // rows: q | k | v
      b->Add(l + ".mlp.gate_up_proj.weight", {2 * t.intermediate_size, h});  // rows: gate | up
      b->Add(l + ".mlp.down_proj.weight", {h, t.intermediate_size});
    } else {
      b->Linear(l + ".self_attn.q_proj", q, h, t.attention_bias);
      b->Linear(l + ".self_attn.k_proj", kv, h, t.attention_bias);
      b->Linear(l + ".self_attn.v_proj", kv, h, t.attention_bias);
      b->Linear(l + ".self_attn.o_proj", h, q, t.attention_bias);
      b->Linear(l + ".mlp.gate_proj", t.intermediate_size, h, t.mlp_bias);
      b->Linear(l + ".mlp.up_proj", t.intermediate_size, h, t.mlp_bias);
      b->Linear(l + ".mlp.down_proj", h, t.intermediate_size, t.mlp_bias);
    }
    b->RmsNorm(l + ".input_layernorm", h);
    b->RmsNorm(l + ".post_attention_layernorm", h);
  }
  b->RmsNorm(prefix + ".norm", h);
}

Status CheckSizes(const ModelConfig& c) {
  const TextConfig& t = c.text;
  auto in = [](int64_t v, int64_t hi) { return v > 0 && v <= hi; };
  if (!in(t.hidden_size, kMaxWidth) || !in(t.intermediate_size, kMaxWidth) || !in(t.head_dim, kMaxWidth) ||
      !in(t.num_attention_heads, kMaxWidth) || !in(t.num_key_value_heads, kMaxWidth) ||
      !in(t.num_attention_heads * t.head_dim, kMaxWidth) || !in(t.vocab_size, kMaxRows)) {
    return InvalidArgument("text sizes are beyond any real model (widths <= 2^20, vocab <= 2^24)");
  }
  if (!in(t.num_hidden_layers, kMaxLayers)) return InvalidArgument("more than 1024 text layers");
  if (c.vision) {
    const VisionConfig& v = *c.vision;
    if (!in(v.hidden_size, kMaxWidth) || !in(v.intermediate_size, kMaxWidth) || !in(v.patch_size, 1024) ||
        !in(v.num_channels, 16) || !in(v.image_size, kMaxRows) || !in(v.num_patches(), kMaxRows)) {
      return InvalidArgument("vision sizes are beyond any real model");
    }
    if (!in(v.num_hidden_layers, kMaxLayers)) return InvalidArgument("more than 1024 vision layers");
  }
  return Status::Ok();
}

}  // namespace

std::string_view HfLayoutName(HfLayout layout) {
  switch (layout) {
    case HfLayout::kV4: return "v4";
    case HfLayout::kV5: return "v5";
    case HfLayout::kV5Module: return "v5-module";
    case HfLayout::kV5Saved: return "v5-saved";
  }
  return "?";
}

std::optional<HfLayout> HfLayoutFromName(std::string_view name) {
  for (HfLayout l : {HfLayout::kV4, HfLayout::kV5, HfLayout::kV5Module, HfLayout::kV5Saved}) {
    if (HfLayoutName(l) == name) return l;
  }
  return std::nullopt;
}

Result<std::vector<TensorSpec>> HfTensorLayout(const ModelConfig& config, HfLayout layout) {
  BL_TRY(CheckSizes(config));
  LayoutBuilder b;
  const TextConfig& t = config.text;
  if (!config.is_vlm()) {
    AddDecoder(t, "model", &b);
    if (!t.tie_word_embeddings) b.Add("lm_head.weight", {t.vocab_size, t.hidden_size});
    return b.Take();
  }
  // v4 and v5-saved keep the wrapper-level prefixes; v5 and v5-module nest under `model.`.
  const bool outer = layout == HfLayout::kV4 || layout == HfLayout::kV5Saved;
  std::string tower;
  switch (layout) {
    case HfLayout::kV4: tower = "vision_tower.vision_model"; break;
    case HfLayout::kV5: tower = "model.vision_tower.vision_model"; break;
    case HfLayout::kV5Module: tower = "model.vision_tower"; break;
    case HfLayout::kV5Saved: tower = "vision_tower"; break;
  }
  const VisionConfig& v = *config.vision;
  AddVisionTower(v, tower, &b);
  const std::string proj = outer ? "multi_modal_projector" : "model.multi_modal_projector";
  b.Linear(proj + ".linear_1", t.hidden_size, v.hidden_size, config.multimodal_projector_bias);
  b.Linear(proj + ".linear_2", t.hidden_size, t.hidden_size, config.multimodal_projector_bias);
  AddDecoder(t, outer ? "language_model.model" : "model.language_model", &b);
  if (!t.tie_word_embeddings) b.Add(outer ? "language_model.lm_head.weight" : "lm_head.weight", {t.vocab_size, t.hidden_size});
  return b.Take();
}

HfLayout DetectHfLayout(const std::vector<std::string>& names) {
  auto any = [&](std::string_view prefix) {
    for (const auto& n : names) {
      if (n.rfind(prefix, 0) == 0) return true;
    }
    return false;
  };
  if (any("model.vision_tower.vision_model.")) return HfLayout::kV5;
  if (any("model.vision_tower.")) return HfLayout::kV5Module;
  if (any("model.language_model.") || any("model.multi_modal_projector.")) return HfLayout::kV5;
  if (any("vision_tower.vision_model.")) return HfLayout::kV4;
  if (any("vision_tower.")) return HfLayout::kV5Saved;
  return HfLayout::kV4;
}

}  // namespace bitlens
