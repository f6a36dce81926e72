// train/recipe: a table of known keys per JSON object drives the parse, so
// an unknown key, a wrong type or an out-of-range value each give one line
// naming the file and the key path ("recipe.json: optimizer.lr: ...").
#include "train/recipe.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

namespace bitlens::train {
namespace {

using json = nlohmann::json;

// One key of a JSON object: how to read it into the recipe.
struct Field {
  const char* key;
  std::function<Status(const json& value, const std::string& path)> read;
};

Status Bad(const std::string& path, const std::string& what) { return InvalidArgument(path + ": " + what); }

std::string TypeName(const json& v) { return v.type_name(); }

Field Int(const char* key, int64_t* out, int64_t min, int64_t max) {
  return {key, [=](const json& v, const std::string& path) -> Status {
            if (!v.is_number_integer()) return Bad(path, std::string("expected an integer, got ") + TypeName(v));
            if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
              return Bad(path, "value out of range");
            }
            const int64_t x = v.get<int64_t>();
            if (x < min || x > max) {
              return Bad(path, std::to_string(x) + " is outside [" + std::to_string(min) + ", " + std::to_string(max) +
                                   "]");
            }
            *out = x;
            return Status::Ok();
          }};
}

Field IntSmall(const char* key, int* out, int64_t min, int64_t max) {
  auto holder = std::make_shared<int64_t>();
  Field f = Int(key, holder.get(), min, max);
  auto inner = f.read;
  f.read = [inner, holder, out](const json& v, const std::string& path) -> Status {
    BL_TRY(inner(v, path));
    *out = static_cast<int>(*holder);
    return Status::Ok();
  };
  return f;
}

Field Real(const char* key, double* out, double min, double max, bool min_exclusive = false) {
  return {key, [=](const json& v, const std::string& path) -> Status {
            if (!v.is_number()) return Bad(path, std::string("expected a number, got ") + TypeName(v));
            const double x = v.get<double>();
            if (!(x >= min && x <= max) || (min_exclusive && x == min)) {
              std::ostringstream os;
              os << x << " is outside " << (min_exclusive ? "(" : "[") << min << ", " << max << "]";
              return Bad(path, os.str());
            }
            *out = x;
            return Status::Ok();
          }};
}

Status ReadObject(const json& obj, const std::string& path, const std::vector<Field>& fields) {
  if (!obj.is_object()) return Bad(path.empty() ? "recipe" : path, std::string("expected an object, got ") + TypeName(obj));
  for (const auto& [key, value] : obj.items()) {
    const std::string key_path = path.empty() ? key : path + "." + key;
    const Field* field = nullptr;
    for (const Field& f : fields) {
      if (key == f.key) field = &f;
    }
    if (field == nullptr) {
      std::string known;
      for (const Field& f : fields) known += std::string(known.empty() ? "" : ", ") + f.key;
      return Bad(key_path, "unknown key (known here: " + known + ")");
    }
    BL_TRY(field->read(value, key_path));
  }
  return Status::Ok();
}

Field Object(const char* key, std::vector<Field> fields) {
  return {key, [fields = std::move(fields)](const json& v, const std::string& path) {
            return ReadObject(v, path, fields);
          }};
}

constexpr int64_t kMaxDim = 1 << 16;
constexpr int64_t kMaxCount = int64_t{1} << 40;

Status CheckConsistency(const Recipe& r) {
  auto divides = [](int64_t a, int64_t b) { return b > 0 && a % b == 0; };
  if (!divides(r.data.image_size, r.vision.patch_size)) {
    return Bad("model.vision.patch_size", std::to_string(r.vision.patch_size) + " does not divide data.image_size " +
                                              std::to_string(r.data.image_size));
  }
  if (!divides(r.vision.hidden_size, r.vision.num_heads)) {
    return Bad("model.vision.num_heads", "does not divide model.vision.hidden_size");
  }
  if (!divides(r.text.hidden_size, r.text.num_heads)) return Bad("model.text.num_heads", "does not divide model.text.hidden_size");
  if (!divides(r.text.num_heads, r.text.num_kv_heads)) return Bad("model.text.num_kv_heads", "does not divide model.text.num_heads");
  if ((r.text.hidden_size / r.text.num_heads) % 2 != 0) return Bad("model.text.num_heads", "head size must be even (RoPE)");
  if (r.vision.num_layers < 2) return Bad("model.vision.num_layers", "needs at least 2 (features come from layer -2)");
  const int64_t image_tokens = (r.data.image_size / r.vision.patch_size) * (r.data.image_size / r.vision.patch_size);
  if (image_tokens + 16 > r.text.max_position_embeddings) {
    return Bad("model.text.max_position_embeddings", std::to_string(r.text.max_position_embeddings) + " leaves no room " +
                                                         "for the prompt after " + std::to_string(image_tokens) +
                                                         " image tokens");
  }
  if (r.optimizer.min_lr > r.optimizer.lr) return Bad("optimizer.min_lr", "is larger than optimizer.lr");
  if (r.optimizer.warmup_steps > r.optimizer.steps) return Bad("optimizer.warmup_steps", "is larger than optimizer.steps");
  if (!r.kinds.empty()) {
    const bool catalog = std::find(r.kinds.begin(), r.kinds.end(), QuestionKind::kCatalog) != r.kinds.end();
    const bool scene = r.kinds.size() > (catalog ? 1u : 0u);
    // MakeSample is redrawn until the kind is wanted, so some wanted kind must be drawable.
    if (!scene && r.data.catalog_fraction <= 0.0) return Bad("data.kinds", "only catalog, but data.catalog_fraction is 0");
    if (!catalog && r.data.catalog_fraction >= 1.0) return Bad("data.kinds", "no catalog, but data.catalog_fraction is 1");
  }
  if (r.eval_samples > r.validation_samples) return Bad("eval.samples", "is larger than data.validation_samples");
  return Status::Ok();
}

}  // namespace

Result<Recipe> ParseRecipe(const std::string& json_text, const std::string& source) {
  const json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return InvalidArgument(source + ": not valid JSON");
  Recipe r;
  int64_t seed = 1, image_size = r.data.image_size;
  std::string dtype = "f32";
  int64_t threads = r.threads;
  const std::vector<Field> fields = {
      Int("seed", &seed, 0, INT64_MAX),
      Object("data", {Int("image_size", &image_size, 8, 1024), Int("train_samples", &r.train_samples, 1, kMaxCount),
                      Int("validation_samples", &r.validation_samples, 1, kMaxCount),
                      Int("test_samples", &r.test_samples, 1, kMaxCount),
                      Real("catalog_fraction", &r.data.catalog_fraction, 0.0, 1.0),
                      {"kinds", [&](const json& v, const std::string& path) -> Status {
                         if (!v.is_array()) return Bad(path, "expected an array of question kinds, got " + TypeName(v));
                         r.kinds.clear();
                         for (const json& k : v) {
                           const auto kind = k.is_string() ? QuestionKindFromName(k.get<std::string>()) : std::nullopt;
                           if (!kind) return Bad(path, k.dump() + " is not a question kind (color, shape, count, ...)");
                           if (std::find(r.kinds.begin(), r.kinds.end(), *kind) == r.kinds.end()) r.kinds.push_back(*kind);
                         }
                         if (r.kinds.empty()) return Bad(path, "is empty (omit it for every kind)");
                         return Status::Ok();
                       }}}),
      Object("tokenizer", {IntSmall("vocab_size", &r.vocab_size, 300, 1 << 20),
                           IntSmall("min_frequency", &r.min_frequency, 1, 1 << 20)}),
      Object("model",
             {Object("vision", {Int("hidden_size", &r.vision.hidden_size, 1, kMaxDim),
                                Int("intermediate_size", &r.vision.intermediate_size, 1, kMaxDim),
                                Int("num_layers", &r.vision.num_layers, 1, 256),
                                Int("num_heads", &r.vision.num_heads, 1, 1024),
                                Int("patch_size", &r.vision.patch_size, 1, 1024)}),
              Object("text", {Int("hidden_size", &r.text.hidden_size, 1, kMaxDim),
                              Int("intermediate_size", &r.text.intermediate_size, 1, kMaxDim),
                              Int("num_layers", &r.text.num_layers, 1, 256),
                              Int("num_heads", &r.text.num_heads, 1, 1024),
                              Int("num_kv_heads", &r.text.num_kv_heads, 1, 1024),
                              Int("max_position_embeddings", &r.text.max_position_embeddings, 16, 1 << 20),
                              Real("rope_theta", &r.text.rope_theta, 1.0, 1e9)}),
              {"dtype", [&](const json& v, const std::string& path) -> Status {
                 if (!v.is_string()) return Bad(path, "expected a string (\"f32\" or \"bf16\"), got " + TypeName(v));
                 dtype = v.get<std::string>();
                 if (dtype != "f32" && dtype != "bf16") return Bad(path, "'" + dtype + "' is not f32 or bf16");
                 return Status::Ok();
               }}}),
      Object("optimizer", {Real("lr", &r.optimizer.lr, 0.0, 10.0, true), Real("min_lr", &r.optimizer.min_lr, 0.0, 10.0),
                           Int("warmup_steps", &r.optimizer.warmup_steps, 0, kMaxCount),
                           Int("steps", &r.optimizer.steps, 1, kMaxCount),
                           Int("batch_size", &r.optimizer.batch_size, 1, 1 << 20),
                           Real("weight_decay", &r.optimizer.weight_decay, 0.0, 10.0),
                           Real("beta1", &r.optimizer.beta1, 0.0, 1.0), Real("beta2", &r.optimizer.beta2, 0.0, 1.0),
                           Real("eps", &r.optimizer.eps, 0.0, 1.0, true),
                           Real("grad_clip", &r.optimizer.grad_clip, 0.0, 1e9)}),
      Object("eval", {Int("interval", &r.eval_interval, 0, kMaxCount), Int("samples", &r.eval_samples, 1, kMaxCount)}),
      Int("checkpoint_interval", &r.checkpoint_interval, 0, kMaxCount),
      Int("threads", &threads, 0, 1024),
  };
  Status s = ReadObject(root, "", fields);
  if (!s.ok()) return s.WithContext(source);
  r.seed = static_cast<uint64_t>(seed);
  r.data.seed = r.seed;
  r.data.image_size = static_cast<int>(image_size);
  r.dtype = dtype == "bf16" ? DType::kBF16 : DType::kF32;
  r.threads = static_cast<int>(threads);
  s = CheckConsistency(r);
  if (!s.ok()) return s.WithContext(source);
  return r;
}

Result<Recipe> LoadRecipe(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot open the recipe");
  std::ostringstream text;
  text << in.rdbuf();
  return ParseRecipe(text.str(), path);
}

ModelConfig RecipeModelConfig(const Recipe& r, int64_t vocab_size, const SpecialTokenIds& ids) {
  ModelConfig c;
  c.model_type = "llava";
  c.architecture = "LlavaForConditionalGeneration";
  c.torch_dtype = r.dtype == DType::kBF16 ? "bfloat16" : "float32";
  TextConfig& t = c.text;
  t.model_type = "llama";
  t.vocab_size = vocab_size;
  t.hidden_size = r.text.hidden_size;
  t.intermediate_size = r.text.intermediate_size;
  t.num_hidden_layers = r.text.num_layers;
  t.num_attention_heads = r.text.num_heads;
  t.num_key_value_heads = r.text.num_kv_heads;
  t.head_dim = r.text.hidden_size / r.text.num_heads;
  t.max_position_embeddings = r.text.max_position_embeddings;
  t.rms_norm_eps = 1e-5;
  t.rope.type = "default";
  t.rope.theta = r.text.rope_theta;
  t.hidden_act = "silu";
  t.tie_word_embeddings = false;
  t.bos_token_id = ids.bos;
  t.eos_token_ids = {ids.eos};
  t.pad_token_id = ids.pad;
  VisionConfig v = VisionConfigDefaults("clip_vision_model");
  v.hidden_size = r.vision.hidden_size;
  v.intermediate_size = r.vision.intermediate_size;
  v.num_hidden_layers = r.vision.num_layers;
  v.num_attention_heads = r.vision.num_heads;
  v.image_size = r.data.image_size;
  v.patch_size = r.vision.patch_size;
  v.layer_norm_eps = 1e-5;
  v.hidden_act = "quick_gelu";
  c.vision = v;
  c.image_token_index = ids.image;
  c.vision_feature_layer = -2;
  c.vision_feature_select_strategy = "default";
  c.projector_hidden_act = "gelu";
  c.multimodal_projector_bias = true;
  return c;
}

}  // namespace bitlens::train
