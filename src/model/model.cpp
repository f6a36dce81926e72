// model/model: LoadModel joins the rooms below it; nothing here computes.
#include "model/model.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "formats/blz.h"
#include "formats/pte.h"
#include "model/export.h"

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
Status ReadGenerationEos(const std::string& text, const std::string& source, std::vector<int32_t>* eos) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(source + ": malformed JSON");
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

Status BindModel(Model* model, const std::string& tokenizer_dir, const std::string* generation_config_json,
                 const std::string* preprocessor_config_json, const std::string& side_file_prefix) {
  const quant::QuantizationConfig* quant = model->quantization.empty() ? nullptr : &model->quantization;
  BL_ASSIGN_OR_RETURN(model->decoder, Decoder::Load(model->checkpoint, model->config.text, quant));
  const TextConfig& text = model->config.text;
  model->bos_id = static_cast<int32_t>(text.bos_token_id);
  for (int64_t id : text.eos_token_ids) AddUnique(&model->eos_ids, id);
  if (generation_config_json != nullptr) {
    BL_TRY(ReadGenerationEos(*generation_config_json, side_file_prefix + "generation_config.json", &model->eos_ids));
  }
  if (!tokenizer_dir.empty()) {
    BL_ASSIGN_OR_RETURN(model->tokenizer, Tokenizer::Load(tokenizer_dir));
    if (model->tokenizer->bos_id()) model->bos_id = *model->tokenizer->bos_id();
    for (int32_t id : model->tokenizer->eos_ids()) AddUnique(&model->eos_ids, id);
    model->chat_family = ChatFamilyFor(text.model_type, *model->tokenizer);
  }
  if (model->config.is_vlm()) {
    BL_ASSIGN_OR_RETURN(model->vision, VisionEncoder::Load(model->checkpoint, model->config, quant));
    // Without preprocessor_config.json the model still runs on encoded image
    // rows; an image file then fails in Session::EncodeImage.
    if (preprocessor_config_json != nullptr) {
      BL_ASSIGN_OR_RETURN(model->image_processor,
                          ParseImageProcessorConfig(*preprocessor_config_json, side_file_prefix + "preprocessor_config.json"));
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<Model>> LoadModel(const std::string& dir) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  // A .blz is recognised by its magic, or by its extension so that a damaged
  // one reports what is wrong with it rather than "not a directory".
  if (fs::is_regular_file(dir, ec) && (blz::BlzFile::LooksLikeBlz(dir) || fs::path(dir).extension() == ".blz")) {
    return LoadBlzModel(dir);
  }
  if (fs::is_regular_file(dir, ec) && (pte::PteFile::LooksLikePte(dir) || fs::path(dir).extension() == ".pte")) {
    return LoadPteModel(dir);
  }
  if (!fs::is_directory(dir, ec)) return NotFound(dir + ": not a model directory");
  auto model = std::make_unique<Model>();
  model->dir = dir;
  BL_ASSIGN_OR_RETURN(model->config, LoadModelConfig(dir));
  BL_ASSIGN_OR_RETURN(model->checkpoint, Checkpoint::Open(dir));
  BL_ASSIGN_OR_RETURN(model->quantization, quant::LoadQuantizationConfig(dir));
  BL_TRY(quant::CheckQuantizedTensorsPresent(model->checkpoint, model->quantization));
  std::optional<std::string> generation, preprocessor;
  if (fs::exists(fs::path(dir) / "generation_config.json", ec)) {
    BL_ASSIGN_OR_RETURN(generation, ReadTextFile((fs::path(dir) / "generation_config.json").string()));
  }
  if (model->config.is_vlm() && fs::exists(fs::path(dir) / "preprocessor_config.json", ec)) {
    BL_ASSIGN_OR_RETURN(preprocessor, ReadTextFile((fs::path(dir) / "preprocessor_config.json").string()));
  }
  BL_TRY(BindModel(model.get(), HasTokenizerFiles(dir) ? dir : std::string(), generation ? &*generation : nullptr,
                   preprocessor ? &*preprocessor : nullptr, dir + "/"));
  model->load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return model;
}

}  // namespace bitlens
