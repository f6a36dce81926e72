#include "formats/hf_config.h"

#include <nlohmann/json.hpp>

#include "base/mmap_file.h"

namespace bitlens {
namespace {

using json = nlohmann::json;

// Reads optional typed keys; a key of the wrong type is an error naming it.
class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  template <typename T>
  void Get(const char* key, T* out) {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return;
    if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) return Fail(key, "a boolean");
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer()) return Fail(key, "an integer");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!it->is_number()) return Fail(key, "a number");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) return Fail(key, "a string");
    } else if constexpr (std::is_same_v<T, std::vector<double>>) {
      if (!it->is_array()) return Fail(key, "an array of numbers");
      for (const auto& x : *it) {
        if (!x.is_number()) return Fail(key, "an array of numbers");
      }
    }
    *out = it->get<T>();
  }

  bool Has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  const Status& status() const { return status_; }

 private:
  void Fail(const char* key, const char* what) {
    if (status_.ok()) status_ = InvalidArgument(where_ + "'" + key + "' must be " + what);
  }
  const json& j_;
  std::string where_;
  Status status_;
};

void ApplyTextDefaults(const std::string& model_type, TextConfig* t) {
  t->model_type = model_type;
  if (model_type == "phi3") {
    t->vocab_size = 32064;
    t->hidden_size = 3072;
    t->intermediate_size = 8192;
    t->num_hidden_layers = 32;
    t->num_attention_heads = 32;
    t->max_position_embeddings = 4096;
    t->rms_norm_eps = 1e-5;
    t->bos_token_id = 1;
    t->eos_token_ids = {32000};
  }
}

Status ParseRope(const json& j, const std::string& where, TextConfig* t) {
  // v5: rope_parameters {rope_type, rope_theta, ...}; v4: rope_theta + rope_scaling {type|rope_type, ...}.
  if (j.contains("rope_theta") && j["rope_theta"].is_number()) t->rope.theta = j["rope_theta"].get<double>();
  const json* scaling = nullptr;
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) scaling = &j["rope_parameters"];
  else if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) scaling = &j["rope_scaling"];
  else if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) return InvalidArgument(where + "'rope_scaling' must be an object or null");
  if (scaling == nullptr) return Status::Ok();
  Reader r(*scaling, where + "rope_scaling.");
  std::string type = "default";
  r.Get("type", &type);
  r.Get("rope_type", &type);
  if (type == "su") type = "longrope";  // early Phi-3 spelling
  r.Get("rope_theta", &t->rope.theta);
  r.Get("factor", &t->rope.factor);
  t->rope.factor_given = r.Has("factor");
  r.Get("low_freq_factor", &t->rope.low_freq_factor);
  r.Get("high_freq_factor", &t->rope.high_freq_factor);
  r.Get("original_max_position_embeddings", &t->rope.original_max_position_embeddings);
  r.Get("short_factor", &t->rope.short_factor);
  r.Get("long_factor", &t->rope.long_factor);
  if (r.Has("attention_factor")) {
    double f = 1.0;
    r.Get("attention_factor", &f);
    t->rope.attention_factor = f;
  }
  BL_TRY(r.status());
  if (type != "default" && type != "linear" && type != "llama3" && type != "longrope") {
    return Unsupported(where + "rope type '" + type + "' is not supported (default, linear, llama3, longrope)");
  }
  t->rope.type = type;
  if (type == "longrope") {
    const size_t half = static_cast<size_t>(t->head_dim * t->partial_rotary_factor) / 2;
    if (t->rope.short_factor.size() != half || t->rope.long_factor.size() != half) {
      return InvalidArgument(where + "longrope short_factor/long_factor need " + std::to_string(half) +
                             " entries (rotary_dim/2), got " + std::to_string(t->rope.short_factor.size()) + "/" +
                             std::to_string(t->rope.long_factor.size()));
    }
  }
  return Status::Ok();
}

Status ParseText(const json& j, const std::string& where, const std::string& fallback_type, TextConfig* t) {
  std::string model_type = fallback_type;
  if (j.contains("model_type") && j["model_type"].is_string()) model_type = j["model_type"].get<std::string>();
  if (model_type != "llama" && model_type != "phi3") {
    return Unsupported(where + "text model_type '" + model_type + "' is not supported (llama, phi3)");
  }
  ApplyTextDefaults(model_type, t);
  Reader r(j, where);
  r.Get("vocab_size", &t->vocab_size);
  r.Get("hidden_size", &t->hidden_size);
  r.Get("intermediate_size", &t->intermediate_size);
  r.Get("num_hidden_layers", &t->num_hidden_layers);
  r.Get("num_attention_heads", &t->num_attention_heads);
  t->num_key_value_heads = t->num_attention_heads;
  r.Get("num_key_value_heads", &t->num_key_value_heads);
  r.Get("max_position_embeddings", &t->max_position_embeddings);
  r.Get("rms_norm_eps", &t->rms_norm_eps);
  r.Get("partial_rotary_factor", &t->partial_rotary_factor);
  r.Get("hidden_act", &t->hidden_act);
  r.Get("attention_bias", &t->attention_bias);
  r.Get("mlp_bias", &t->mlp_bias);
  r.Get("tie_word_embeddings", &t->tie_word_embeddings);
  r.Get("bos_token_id", &t->bos_token_id);
  if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer()) t->pad_token_id = j["pad_token_id"].get<int64_t>();
  if (j.contains("eos_token_id")) {
    const json& e = j["eos_token_id"];
    if (e.is_number_integer()) t->eos_token_ids = {e.get<int64_t>()};
    else if (e.is_array()) {
      t->eos_token_ids.clear();
      for (const auto& x : e) {
        if (!x.is_number_integer()) return InvalidArgument(where + "'eos_token_id' must hold integers");
        t->eos_token_ids.push_back(x.get<int64_t>());
      }
    }
  }
  BL_TRY(r.status());
  if (t->hidden_size <= 0 || t->num_attention_heads <= 0 || t->num_hidden_layers <= 0 || t->vocab_size <= 0 ||
      t->intermediate_size <= 0 || t->num_key_value_heads <= 0) {
    return InvalidArgument(where + "sizes must be positive (hidden_size, num_attention_heads, num_hidden_layers, vocab_size, ...)");
  }
  if (t->num_attention_heads % t->num_key_value_heads != 0) {
    return InvalidArgument(where + "num_attention_heads (" + std::to_string(t->num_attention_heads) +
                           ") is not a multiple of num_key_value_heads (" + std::to_string(t->num_key_value_heads) + ")");
  }
  t->head_dim = t->hidden_size / t->num_attention_heads;
  r.Get("head_dim", &t->head_dim);
  BL_TRY(r.status());
  if (t->head_dim <= 0 || t->head_dim % 2 != 0) return InvalidArgument(where + "head_dim must be positive and even");
  if (t->partial_rotary_factor <= 0 || t->partial_rotary_factor > 1) {
    return InvalidArgument(where + "partial_rotary_factor must be in (0, 1]");
  }
  if (t->model_type == "phi3") t->rope.original_max_position_embeddings = t->max_position_embeddings;
  if (j.contains("original_max_position_embeddings") && j["original_max_position_embeddings"].is_number_integer()) {
    t->rope.original_max_position_embeddings = j["original_max_position_embeddings"].get<int64_t>();
  }
  return ParseRope(j, where, t);
}

Status ParseVision(const json& j, const std::string& where, VisionConfig* v) {
  std::string model_type = "clip_vision_model";
  if (j.contains("model_type") && j["model_type"].is_string()) model_type = j["model_type"].get<std::string>();
  if (model_type != "clip_vision_model" && model_type != "siglip_vision_model") {
    return Unsupported(where + "vision model_type '" + model_type + "' is not supported (clip_vision_model, siglip_vision_model)");
  }
  *v = VisionConfigDefaults(model_type);
  Reader r(j, where);
  r.Get("hidden_size", &v->hidden_size);
  r.Get("intermediate_size", &v->intermediate_size);
  r.Get("num_hidden_layers", &v->num_hidden_layers);
  r.Get("num_attention_heads", &v->num_attention_heads);
  r.Get("num_channels", &v->num_channels);
  r.Get("image_size", &v->image_size);
  r.Get("patch_size", &v->patch_size);
  r.Get("layer_norm_eps", &v->layer_norm_eps);
  r.Get("hidden_act", &v->hidden_act);
  BL_TRY(r.status());
  // Upper bounds keep num_patches() and the layer-index checks free of overflow.
  if (v->image_size > (int64_t{1} << 20) || v->num_hidden_layers > (int64_t{1} << 16)) {
    return InvalidArgument(where + "image_size or num_hidden_layers is beyond any real model");
  }
  if (v->hidden_size <= 0 || v->num_attention_heads <= 0 || v->patch_size <= 0 || v->image_size < v->patch_size ||
      v->num_hidden_layers <= 0 || v->intermediate_size <= 0 || v->num_channels <= 0 ||
      v->hidden_size % v->num_attention_heads != 0) {
    return InvalidArgument(where + "invalid sizes (hidden_size, num_attention_heads, image_size, patch_size)");
  }
  return Status::Ok();
}

}  // namespace

VisionConfig VisionConfigDefaults(const std::string& model_type) {
  VisionConfig v;  // the struct's initializers are CLIPVisionConfig's defaults
  v.model_type = model_type;
  if (model_type == "siglip_vision_model") {
    v.patch_size = 16;
    v.hidden_act = "gelu_pytorch_tanh";
    v.layer_norm_eps = 1e-6;
  }
  return v;
}

int64_t ModelConfig::image_seq_length() const {
  if (!vision) return 0;
  // As transformers' LlavaProcessor: patches, plus the class token if the
  // tower has one, minus one when the "default" strategy drops the first
  // position (for SigLIP that is a real patch; HF does the same).
  int64_t n = vision->num_patches() + (vision->has_class_token() ? 1 : 0);
  if (vision_feature_select_strategy == "default") n -= 1;
  return n;
}

Result<ModelConfig> ParseModelConfig(const std::string& json_text, const std::string& source) {
  const std::string where = source + ": ";
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(where + "malformed JSON");
  if (!j.is_object()) return InvalidArgument(where + "expected a JSON object");
  ModelConfig c;
  if (!j.contains("model_type") || !j["model_type"].is_string()) return InvalidArgument(where + "missing 'model_type'");
  c.model_type = j["model_type"].get<std::string>();
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    c.architecture = j["architectures"][0].get<std::string>();
  }
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.torch_dtype = j["torch_dtype"].get<std::string>();
  if (j.contains("dtype") && j["dtype"].is_string()) c.torch_dtype = j["dtype"].get<std::string>();

  if (c.model_type == "llama" || c.model_type == "phi3") {
    BL_TRY(ParseText(j, where, c.model_type, &c.text));
    return c;
  }
  if (c.model_type != "llava") {
    return Unsupported(where + "model_type '" + c.model_type + "' is not supported (llava, llama, phi3)");
  }
  const json empty = json::object();
  const json& tj = j.contains("text_config") && j["text_config"].is_object() ? j["text_config"] : empty;
  const json& vj = j.contains("vision_config") && j["vision_config"].is_object() ? j["vision_config"] : empty;
  BL_TRY(ParseText(tj, where + "text_config.", "llama", &c.text));
  VisionConfig vision;
  BL_TRY(ParseVision(vj, where + "vision_config.", &vision));
  c.vision = vision;
  Reader r(j, where);
  r.Get("image_token_index", &c.image_token_index);
  r.Get("image_token_id", &c.image_token_index);
  r.Get("vision_feature_select_strategy", &c.vision_feature_select_strategy);
  r.Get("projector_hidden_act", &c.projector_hidden_act);
  r.Get("multimodal_projector_bias", &c.multimodal_projector_bias);
  // tie_word_embeddings may sit at the top level of a llava config.
  if (j.contains("tie_word_embeddings") && j["tie_word_embeddings"].is_boolean() && !tj.contains("tie_word_embeddings")) {
    c.text.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  }
  if (j.contains("vision_feature_layer")) {
    const json& l = j["vision_feature_layer"];
    if (l.is_number_integer()) c.vision_feature_layer = l.get<int64_t>();
    else if (!l.is_null()) return Unsupported(where + "'vision_feature_layer' must be a single integer (lists are not supported)");
  }
  BL_TRY(r.status());
  if (c.vision_feature_select_strategy != "default" && c.vision_feature_select_strategy != "full") {
    return InvalidArgument(where + "vision_feature_select_strategy must be 'default' or 'full'");
  }
  const int64_t layers = c.vision->num_hidden_layers;
  if (c.vision_feature_layer < -(layers + 1) || c.vision_feature_layer > layers) {
    return InvalidArgument(where + "vision_feature_layer " + std::to_string(c.vision_feature_layer) +
                           " is outside the vision tower's " + std::to_string(layers) + " layers");
  }
  return c;
}

Result<ModelConfig> LoadModelConfig(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  BL_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  return ParseModelConfig(text, path);
}

}  // namespace bitlens
