// formats/hf_config: config.json of a Hugging Face checkpoint parsed into
// plain structs, with the transformers defaults for every key a real config
// may omit. Families: llama, phi3 (text); llava with a clip_vision_model or
// siglip_vision_model tower. Accepts both the transformers v4 spellings
// (rope_scaling, image_token_index) and the v5 ones (rope_parameters,
// image_token_id).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace bitlens {

struct RopeConfig {
  std::string type = "default";  // default | linear | llama3 | longrope
  double theta = 10000.0;
  double factor = 1.0;                       // linear, llama3, longrope
  bool factor_given = false;                 // longrope derives it when absent
  double low_freq_factor = 1.0;              // llama3
  double high_freq_factor = 4.0;             // llama3
  int64_t original_max_position_embeddings = 0;  // llama3, longrope
  std::vector<double> short_factor;          // longrope
  std::vector<double> long_factor;           // longrope
  std::optional<double> attention_factor;    // longrope (else derived from the scale)
};

struct TextConfig {
  std::string model_type = "llama";  // llama | phi3
  int64_t vocab_size = 32000;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 11008;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;
  int64_t head_dim = 128;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double partial_rotary_factor = 1.0;
  RopeConfig rope;
  std::string hidden_act = "silu";
  bool attention_bias = false;
  bool mlp_bias = false;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 1;
  std::vector<int64_t> eos_token_ids = {2};
  std::optional<int64_t> pad_token_id;
};

struct VisionConfig {
  std::string model_type = "clip_vision_model";  // clip_vision_model | siglip_vision_model
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 224;
  int64_t patch_size = 32;
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";

  bool has_class_token() const { return model_type == "clip_vision_model"; }
  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

struct ModelConfig {
  std::string model_type;     // top level: llama | phi3 | llava
  std::string architecture;   // architectures[0], e.g. LlavaForConditionalGeneration
  std::string torch_dtype;    // as written (torch_dtype or v5 dtype), may be empty
  TextConfig text;
  std::optional<VisionConfig> vision;  // set for VLMs
  // llava
  int64_t image_token_index = 32000;
  int64_t vision_feature_layer = -2;
  std::string vision_feature_select_strategy = "default";  // default | full
  std::string projector_hidden_act = "gelu";
  bool multimodal_projector_bias = true;

  bool is_vlm() const { return vision.has_value(); }
  // Image tokens one image expands to in the prompt.
  int64_t image_seq_length() const;
};

// transformers' defaults for a vision tower type (clip_vision_model or
// siglip_vision_model): activation, layer-norm epsilon, patch size.
VisionConfig VisionConfigDefaults(const std::string& model_type);

// Parses config.json text; `source` names the file in error messages.
Result<ModelConfig> ParseModelConfig(const std::string& json_text, const std::string& source);
// Reads <dir>/config.json.
Result<ModelConfig> LoadModelConfig(const std::string& model_dir);

}  // namespace bitlens
