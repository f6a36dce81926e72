// train/vlm_checkpoint: a TrainableVlm to and from an HF checkpoint folder —
// config.json spelled by model/synth_config (the same file `bitlens synth`
// writes for LLaVA) and model.safetensors in HF v4 tensor names (side files
// such as generation_config.json are the caller's); loading accepts every
// layout transformers writes.
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "base/f16.h"
#include "formats/safetensors.h"
#include "model/presets.h"
#include "model/synth_config.h"
#include "model/synth_layout.h"
#include "train/vlm.h"

namespace bitlens::train {
namespace {

namespace fs = std::filesystem;

// Written under a temporary name and renamed, so a failed save never leaves a
// half-written file under the final name.
Status WriteFileAtomic(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return IoError(tmp.string() + ": cannot open for writing");
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return IoError(tmp.string() + ": write failed (disk full?)");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return IoError(path.string() + ": cannot rename from " + tmp.string() + ": " + ec.message());
  return Status::Ok();
}

// The synth preset whose config.json describes `config` (only the fields
// synth_config reads matter).
SynthPreset PresetFor(const ModelConfig& config) {
  SynthPreset p;
  p.name = "ref-vlm";
  p.family = SynthFamily::kLlava;
  p.config = config;
  if (p.config.architecture.empty()) p.config.architecture = "LlavaForConditionalGeneration";
  p.clip_projection_dim = config.vision ? config.vision->hidden_size : 0;  // unused by LLaVA
  return p;
}

Status CopyTensor(const Checkpoint& ckpt, const std::string& name, const std::string& dir, Param* p) {
  const TensorEntry* e = ckpt.Find(name);
  if (e == nullptr) return NotFound(dir + ": tensor '" + name + "' is missing");
  if (e->dtype != DType::kF32 && e->dtype != DType::kBF16 && e->dtype != DType::kF16) {
    return InvalidArgument(ckpt.FileOf(name) + ": tensor '" + name + "' is " + std::string(DTypeName(e->dtype)) +
                           "; training reads F32, BF16 or F16 weights");
  }
  if (e->shape != p->shape) {
    return InvalidArgument(ckpt.FileOf(name) + ": tensor '" + name + "' has shape " + ShapeToString(e->shape) +
                           " but config.json implies " + ShapeToString(p->shape));
  }
  BL_ASSIGN_OR_RETURN(Tensor t, ckpt.Get(name));
  const Tensor f = t.ToF32();
  std::memcpy(p->value.data(), f.data_as<float>(), p->value.size() * sizeof(float));
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<TrainableVlm>> TrainableVlm::Load(const std::string& model_dir) {
  BL_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  BL_ASSIGN_OR_RETURN(std::unique_ptr<TrainableVlm> model, Create(config, /*seed=*/0));
  BL_ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(model_dir));
  // The checkpoint's spelling lists the same tensors in the same order as the
  // v4 names the Params carry.
  const HfLayout layout = DetectHfLayout(ckpt.Names());
  BL_ASSIGN_OR_RETURN(std::vector<TensorSpec> specs, HfTensorLayout(config, layout));
  ParamSet& params = model->params();
  if (specs.size() != params.size()) return Internal("tensor layouts of " + model_dir + " disagree in length");
  for (size_t i = 0; i < specs.size(); ++i) BL_TRY(CopyTensor(ckpt, specs[i].name, model_dir, &params[i]));
  return model;
}

Status SaveVlmCheckpoint(const TrainableVlm& model, DType dtype, const std::string& dir) {
  if (dtype != DType::kF32 && dtype != DType::kBF16 && dtype != DType::kF16) {
    return InvalidArgument("checkpoints are saved as f32, bf16 or f16, not " + std::string(DTypeName(dtype)));
  }
  const fs::path out(dir);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return IoError(dir + ": cannot create the directory: " + ec.message());
  const SynthPreset preset = PresetFor(model.config());
  BL_TRY(WriteFileAtomic(out / "config.json", SynthConfigJson(preset, dtype, HfLayout::kV4)));

  const ParamSet& params = model.params();
  SafetensorsWriter writer((out / "model.safetensors").string());
  writer.SetMetadata("format", "pt");  // as torch's save_pretrained marks its files
  for (size_t i = 0; i < params.size(); ++i) writer.Declare(params[i].name, dtype, params[i].shape);
  BL_TRY(writer.Begin());
  std::vector<uint16_t> half;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::vector<float>& v = params[i].value;
    if (dtype == DType::kF32) {
      BL_TRY(writer.Write(v.data(), v.size() * sizeof(float)));
      continue;
    }
    half.resize(v.size());
    for (size_t j = 0; j < v.size(); ++j) half[j] = dtype == DType::kBF16 ? F32ToBf16(v[j]) : F32ToF16(v[j]);
    BL_TRY(writer.Write(half.data(), half.size() * sizeof(uint16_t)));
  }
  return writer.Finish();
}

}  // namespace bitlens::train
