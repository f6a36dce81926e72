// model/model: LoadModel joins the rooms below it; nothing here computes.
#include "model/model.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "base/mmap_file.h"

namespace bitlens {
namespace {

namespace fs = std::filesystem;

bool HasTokenizerFiles(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "tokenizer.json", ec) || fs::exists(dir / "tokenizer.model", ec) ||
         fs::exists(dir / "vocab.json", ec);
}

void AddUnique(std::vector<int32_t>* ids, int64_t id) {
  if (id >= 0 && std::find(ids->begin(), ids->end(), id) == ids->end()) ids->push_back(static_cast<int32_t>(id));
}

// generation_config.json's eos_token_id (int or list), which HF generate uses.
Status ReadGenerationEos(const fs::path& dir, std::vector<int32_t>* eos) {
  const fs::path path = dir / "generation_config.json";
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::Ok();
  BL_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path.string()));
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(path.string() + ": malformed JSON");
  auto it = j.find("eos_token_id");
  if (it == j.end()) return Status::Ok();
  if (it->is_number_integer()) AddUnique(eos, it->get<int64_t>());
  else if (it->is_array()) {
    for (const auto& x : *it) {
      if (x.is_number_integer()) AddUnique(eos, x.get<int64_t>());
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Model>> LoadModel(const std::string& dir) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound(dir + ": not a model directory");
  auto model = std::make_unique<Model>();
  model->dir = dir;
  BL_ASSIGN_OR_RETURN(model->config, LoadModelConfig(dir));
  BL_ASSIGN_OR_RETURN(model->checkpoint, Checkpoint::Open(dir));
  BL_ASSIGN_OR_RETURN(model->quantization, quant::LoadQuantizationConfig(dir));
  BL_TRY(quant::CheckQuantizedTensorsPresent(model->checkpoint, model->quantization));
  const quant::QuantizationConfig* quant = model->quantization.empty() ? nullptr : &model->quantization;
  BL_ASSIGN_OR_RETURN(model->decoder, Decoder::Load(model->checkpoint, model->config.text, quant));
  const TextConfig& text = model->config.text;
  model->bos_id = static_cast<int32_t>(text.bos_token_id);
  for (int64_t id : text.eos_token_ids) AddUnique(&model->eos_ids, id);
  BL_TRY(ReadGenerationEos(dir, &model->eos_ids));
  if (HasTokenizerFiles(dir)) {
    BL_ASSIGN_OR_RETURN(model->tokenizer, Tokenizer::Load(dir));
    if (model->tokenizer->bos_id()) model->bos_id = *model->tokenizer->bos_id();
    for (int32_t id : model->tokenizer->eos_ids()) AddUnique(&model->eos_ids, id);
    model->chat_family = ChatFamilyFor(text.model_type, *model->tokenizer);
  }
  if (model->config.is_vlm()) {
    BL_ASSIGN_OR_RETURN(model->vision, VisionEncoder::Load(model->checkpoint, model->config, quant));
    // Without preprocessor_config.json the model still runs on encoded image
    // rows; an image file then fails in Session::EncodeImage.
    if (fs::exists(fs::path(dir) / "preprocessor_config.json", ec)) {
      BL_ASSIGN_OR_RETURN(model->image_processor, LoadImageProcessorConfig(dir));
    }
  }
  model->load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return model;
}

}  // namespace bitlens
