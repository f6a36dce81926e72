// model/synth_config: key sets follow transformers' LlamaConfig, Phi3Config,
// CLIPVisionConfig, SiglipVisionConfig and LlavaConfig; keys are sorted as
// save_pretrained sorts them.
#include "model/synth_config.h"

#include <nlohmann/json.hpp>

namespace bitlens {
namespace {

using json = nlohmann::json;

// What save_pretrained records; v4 files come from the 4.x line, whose
// spelling they use.
const char* TransformersVersion(HfLayout layout) { return layout == HfLayout::kV4 ? "4.46.1" : "5.0.0"; }

// Every layout but v4 comes from transformers versions that write v5 keys.
HfLayout KeySpelling(HfLayout layout) { return layout == HfLayout::kV4 ? HfLayout::kV4 : HfLayout::kV5; }

json IdOrList(const std::vector<int64_t>& ids) {
  if (ids.size() == 1) return ids[0];
  return json(ids);
}

json OptionalId(const std::optional<int64_t>& id) { return id ? json(*id) : json(nullptr); }

void AddRope(const TextConfig& t, HfLayout layout, json* j) {
  json params = json::object();
  if (t.rope.type == "longrope") {
    params["short_factor"] = t.rope.short_factor;
    params["long_factor"] = t.rope.long_factor;
  }
  if (KeySpelling(layout) == HfLayout::kV4) {
    (*j)["rope_theta"] = t.rope.theta;
    if (t.rope.type == "default") {
      (*j)["rope_scaling"] = nullptr;
    } else {
      params["type"] = t.rope.type;
      (*j)["rope_scaling"] = params;
    }
    return;
  }
  params["rope_type"] = t.rope.type;
  params["rope_theta"] = t.rope.theta;
  if (t.rope.type == "longrope") {
    params["original_max_position_embeddings"] = t.rope.original_max_position_embeddings;
    params["partial_rotary_factor"] = t.partial_rotary_factor;
  }
  (*j)["rope_parameters"] = params;
}

json TextConfigJson(const SynthPreset& p, HfLayout layout) {
  const TextConfig& t = p.config.text;
  json j = {{"model_type", t.model_type},
            {"vocab_size", t.vocab_size},
            {"hidden_size", t.hidden_size},
            {"intermediate_size", t.intermediate_size},
            {"num_hidden_layers", t.num_hidden_layers},
            {"num_attention_heads", t.num_attention_heads},
            {"num_key_value_heads", t.num_key_value_heads},
            {"hidden_act", t.hidden_act},
            {"max_position_embeddings", t.max_position_embeddings},
            {"initializer_range", 0.02},
            {"rms_norm_eps", t.rms_norm_eps},
            {"use_cache", true},
            {"tie_word_embeddings", t.tie_word_embeddings},
            {"attention_dropout", 0.0},
            {"bos_token_id", t.bos_token_id},
            {"eos_token_id", IdOrList(t.eos_token_ids)},
            {"pad_token_id", OptionalId(t.pad_token_id)}};
  if (t.model_type == "phi3") {
    j["original_max_position_embeddings"] = t.rope.original_max_position_embeddings;
    j["partial_rotary_factor"] = t.partial_rotary_factor;
    j["resid_pdrop"] = 0.0;
    j["embd_pdrop"] = 0.0;
    j["sliding_window"] = OptionalId(p.sliding_window);
  } else {
    j["head_dim"] = t.head_dim;
    j["attention_bias"] = t.attention_bias;
    j["mlp_bias"] = t.mlp_bias;
    j["pretraining_tp"] = 1;
  }
  AddRope(t, layout, &j);
  return j;
}

json VisionConfigJson(const SynthPreset& p) {
  const VisionConfig& v = *p.config.vision;
  json j = {{"model_type", v.model_type},
            {"hidden_size", v.hidden_size},
            {"intermediate_size", v.intermediate_size},
            {"num_hidden_layers", v.num_hidden_layers},
            {"num_attention_heads", v.num_attention_heads},
            {"num_channels", v.num_channels},
            {"image_size", v.image_size},
            {"patch_size", v.patch_size},
            {"hidden_act", v.hidden_act},
            {"layer_norm_eps", v.layer_norm_eps},
            {"attention_dropout", 0.0}};
  if (v.model_type == "clip_vision_model") {
    j["projection_dim"] = p.clip_projection_dim;
    j["initializer_range"] = 0.02;
    j["initializer_factor"] = 1.0;
  } else {
    j["vision_use_head"] = false;  // LLaVA reads patch features; no pooling head
  }
  return j;
}

}  // namespace

std::string TorchDtypeName(DType dtype) {
  switch (dtype) {
    case DType::kBF16: return "bfloat16";
    case DType::kF16: return "float16";
    default: return "float32";
  }
}

std::string SynthConfigJson(const SynthPreset& p, DType dtype, HfLayout layout) {
  const char* dtype_key = KeySpelling(layout) == HfLayout::kV4 ? "torch_dtype" : "dtype";
  json j;
  if (!p.config.is_vlm()) {
    j = TextConfigJson(p, layout);
  } else {
    json text = TextConfigJson(p, layout);
    const TextConfig& t = p.config.text;
    j = {{"model_type", "llava"},
         {"text_config", text},
         {"vision_config", VisionConfigJson(p)},
         {"image_token_index", p.config.image_token_index},
         {"image_seq_length", p.config.image_seq_length()},
         {"projector_hidden_act", p.config.projector_hidden_act},
         {"multimodal_projector_bias", p.config.multimodal_projector_bias},
         {"vision_feature_layer", p.config.vision_feature_layer},
         {"vision_feature_select_strategy", p.config.vision_feature_select_strategy},
         {"tie_word_embeddings", t.tie_word_embeddings},
         {"pad_token_id", OptionalId(t.pad_token_id)},
         {"ignore_index", -100}};
    j["text_config"][dtype_key] = TorchDtypeName(dtype);
  }
  j["architectures"] = json::array({p.config.architecture});
  j[dtype_key] = TorchDtypeName(dtype);
  j["transformers_version"] = TransformersVersion(layout);
  return j.dump(2) + "\n";
}

std::string SynthGenerationConfigJson(const SynthPreset& p, HfLayout layout) {
  const TextConfig& t = p.config.text;
  json j = {{"_from_model_config", true},
            {"bos_token_id", t.bos_token_id},
            {"eos_token_id", IdOrList(p.generation_eos_ids)},
            {"transformers_version", TransformersVersion(layout)}};
  if (t.pad_token_id) j["pad_token_id"] = *t.pad_token_id;
  return j.dump(2) + "\n";
}

std::string SynthPreprocessorConfigJson(const SynthPreset& p) {
  if (!p.image_processor) return "";
  const SynthImageProcessorSpec& ip = *p.image_processor;
  json j = {{"image_processor_type", ip.processor_type},
            {"processor_class", "LlavaProcessor"},
            {"do_resize", true},
            {"resample", ip.resample},
            {"do_rescale", true},
            {"rescale_factor", 1.0 / 255.0},
            {"do_normalize", true},
            {"image_mean", {ip.mean[0], ip.mean[1], ip.mean[2]}},
            {"image_std", {ip.std[0], ip.std[1], ip.std[2]}},
            {"do_convert_rgb", true}};
  if (ip.processor_type == "CLIPImageProcessor") {
    j["size"] = {{"shortest_edge", ip.size}};
    j["do_center_crop"] = ip.crop > 0;
    j["crop_size"] = {{"height", ip.crop}, {"width", ip.crop}};
  } else {
    j["size"] = {{"height", ip.size}, {"width", ip.size}};
  }
  return j.dump(2) + "\n";
}

std::string SynthProcessorConfigJson(const SynthPreset& p) {
  if (!p.config.is_vlm()) return "";
  const VisionConfig& v = *p.config.vision;
  // LlavaProcessor: tokens per image = patches + num_additional_image_tokens
  // (the CLS position), minus one under the "default" selection strategy.
  json j = {{"processor_class", "LlavaProcessor"},
            {"image_token", "<image>"},
            {"patch_size", v.patch_size},
            {"num_additional_image_tokens", v.has_class_token() ? 1 : 0},
            {"vision_feature_select_strategy", p.config.vision_feature_select_strategy}};
  return j.dump(2) + "\n";
}

}  // namespace bitlens
