// model/vit_weights: tensor binding and validation for the CLIP/SigLIP tower.
#include "model/vit_weights.h"

#include <filesystem>

#include "quant/checkpoint.h"

namespace bitlens {
namespace {

bool IsFloat(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

}  // namespace

std::string WeightLoader::CheckpointPath() const {
  const auto& files = checkpoint_.files();
  if (files.empty()) return "checkpoint";
  if (files.size() == 1) return files.front()->path();
  return (std::filesystem::path(files.front()->path()).parent_path() / "model.safetensors.index.json").string();
}

Result<Tensor> WeightLoader::Fetch(const std::string& name) {
  const std::string full = prefix_ + name;
  const TensorEntry* entry = checkpoint_.Find(full);
  if (entry == nullptr) return NotFound(CheckpointPath() + ": tensor '" + full + "' is missing");
  if (!IsFloat(entry->dtype)) {
    return InvalidArgument(checkpoint_.FileOf(full) + ": tensor '" + full + "' has dtype " +
                           std::string(DTypeName(entry->dtype)) + "; expected F32, F16 or BF16");
  }
  BL_ASSIGN_OR_RETURN(Tensor t, checkpoint_.Get(full));
  return t;
}

Result<kernels::WeightView> WeightLoader::Matrix(const std::string& name, const Shape& shape) {
  const std::string full = prefix_ + name;
  const TensorEntry* entry = checkpoint_.Find(full);
  if ((quant_ != nullptr && quant_->Find(full) != nullptr) || (entry != nullptr && entry->dtype == DType::kU8)) {
    Tensor packed;
    BL_ASSIGN_OR_RETURN(kernels::WeightView w, quant::MapWeight(checkpoint_, quant_, full, shape, &packed));
    mapped_.push_back(std::move(packed));
    return w;
  }
  BL_ASSIGN_OR_RETURN(Tensor t, Fetch(name));
  if (t.shape() != shape) {
    return InvalidArgument(checkpoint_.FileOf(full) + ": tensor '" + full + "' has shape " +
                           ShapeToString(t.shape()) + " but config.json implies " + ShapeToString(shape));
  }
  kernels::WeightView w;
  w.dtype = t.dtype();
  w.data = t.data();
  w.n = shape[0];
  w.k = NumElements(shape) / shape[0];
  mapped_.push_back(std::move(t));
  return w;
}

Result<std::vector<float>> WeightLoader::Vector(const std::string& name, const Shape& shape) {
  BL_ASSIGN_OR_RETURN(Tensor t, Fetch(name));
  if (t.shape() != shape) {
    return InvalidArgument(checkpoint_.FileOf(prefix_ + name) + ": tensor '" + prefix_ + name + "' has shape " +
                           ShapeToString(t.shape()) + " but config.json implies " + ShapeToString(shape));
  }
  const Tensor f = t.ToF32();
  const float* p = f.data_as<float>();
  return std::vector<float>(p, p + f.numel());
}

namespace {

Result<std::string> FindPrefix(const Checkpoint& checkpoint, const std::vector<std::string>& prefixes,
                               const std::string& probe, const std::string& what) {
  for (const std::string& p : prefixes) {
    if (checkpoint.Has(p + probe)) return p;
  }
  std::string tried;
  for (const std::string& p : prefixes) tried += (tried.empty() ? "'" : ", '") + p + probe + "'";
  const std::string file = checkpoint.files().empty() ? "checkpoint" : checkpoint.files().front()->path();
  return NotFound(file + ": no " + what + " tensors (looked for " + tried + ")");
}

}  // namespace

Result<std::string> FindVisionTowerPrefix(const Checkpoint& checkpoint) {
  return FindPrefix(checkpoint,
                    {"vision_tower.vision_model.", "model.vision_tower.vision_model.", "model.vision_tower.",
                     "vision_tower."},
                    "embeddings.patch_embedding.weight", "vision tower");
}

Result<std::string> FindProjectorPrefix(const Checkpoint& checkpoint) {
  return FindPrefix(checkpoint, {"multi_modal_projector.", "model.multi_modal_projector."}, "linear_1.weight",
                    "multi-modal projector");
}

Result<VitWeights> LoadVitWeights(WeightLoader& loader, const VisionConfig& config, int64_t num_layers) {
  const int64_t d = config.hidden_size;
  const int64_t p = config.patch_size;
  const int64_t positions = config.num_patches() + (config.has_class_token() ? 1 : 0);
  VitWeights w;
  BL_ASSIGN_OR_RETURN(w.patch_embedding, loader.Matrix("embeddings.patch_embedding.weight", {d, config.num_channels, p, p}));
  if (config.has_class_token()) {
    BL_ASSIGN_OR_RETURN(w.class_embedding, loader.Vector("embeddings.class_embedding", {d}));
    BL_ASSIGN_OR_RETURN(w.pre_layrnorm_weight, loader.Vector("pre_layrnorm.weight", {d}));
    BL_ASSIGN_OR_RETURN(w.pre_layrnorm_bias, loader.Vector("pre_layrnorm.bias", {d}));
  } else {
    BL_ASSIGN_OR_RETURN(w.patch_bias, loader.Vector("embeddings.patch_embedding.bias", {d}));
  }
  BL_ASSIGN_OR_RETURN(w.position_embedding, loader.Vector("embeddings.position_embedding.weight", {positions, d}));

  const int64_t ff = config.intermediate_size;
  w.layers.resize(static_cast<size_t>(num_layers));
  for (int64_t i = 0; i < num_layers; ++i) {
    VitLayerWeights& l = w.layers[static_cast<size_t>(i)];
    const std::string n = "encoder.layers." + std::to_string(i) + ".";
    BL_ASSIGN_OR_RETURN(l.layer_norm1_weight, loader.Vector(n + "layer_norm1.weight", {d}));
    BL_ASSIGN_OR_RETURN(l.layer_norm1_bias, loader.Vector(n + "layer_norm1.bias", {d}));
    BL_ASSIGN_OR_RETURN(l.q_proj, loader.Matrix(n + "self_attn.q_proj.weight", {d, d}));
    BL_ASSIGN_OR_RETURN(l.q_bias, loader.Vector(n + "self_attn.q_proj.bias", {d}));
    BL_ASSIGN_OR_RETURN(l.k_proj, loader.Matrix(n + "self_attn.k_proj.weight", {d, d}));
    BL_ASSIGN_OR_RETURN(l.k_bias, loader.Vector(n + "self_attn.k_proj.bias", {d}));
    BL_ASSIGN_OR_RETURN(l.v_proj, loader.Matrix(n + "self_attn.v_proj.weight", {d, d}));
    BL_ASSIGN_OR_RETURN(l.v_bias, loader.Vector(n + "self_attn.v_proj.bias", {d}));
    BL_ASSIGN_OR_RETURN(l.out_proj, loader.Matrix(n + "self_attn.out_proj.weight", {d, d}));
    BL_ASSIGN_OR_RETURN(l.out_bias, loader.Vector(n + "self_attn.out_proj.bias", {d}));
    BL_ASSIGN_OR_RETURN(l.layer_norm2_weight, loader.Vector(n + "layer_norm2.weight", {d}));
    BL_ASSIGN_OR_RETURN(l.layer_norm2_bias, loader.Vector(n + "layer_norm2.bias", {d}));
    BL_ASSIGN_OR_RETURN(l.fc1, loader.Matrix(n + "mlp.fc1.weight", {ff, d}));
    BL_ASSIGN_OR_RETURN(l.fc1_bias, loader.Vector(n + "mlp.fc1.bias", {ff}));
    BL_ASSIGN_OR_RETURN(l.fc2, loader.Matrix(n + "mlp.fc2.weight", {d, ff}));
    BL_ASSIGN_OR_RETURN(l.fc2_bias, loader.Vector(n + "mlp.fc2.bias", {d}));
  }
  return w;
}

}  // namespace bitlens
