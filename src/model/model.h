// model/model: everything loaded from one checkpoint directory — config,
// mapped tensors, the text decoder, the tokenizer, and for a VLM the vision
// encoder and its image processor settings.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "model/decoder.h"
#include "model/vision_encoder.h"
#include "quant/checkpoint.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "vision/image.h"

namespace bitlens {

struct Model {
  std::string dir;
  ModelConfig config;
  Checkpoint checkpoint;
  quant::QuantizationConfig quantization;  // empty unless config.json has a bitlens quantization_config
  std::unique_ptr<Decoder> decoder;
  std::unique_ptr<Tokenizer> tokenizer;           // null when the directory has no tokenizer files
  std::unique_ptr<VisionEncoder> vision;          // VLMs only
  std::optional<ImageProcessorConfig> image_processor;  // VLMs with preprocessor_config.json
  ChatFamily chat_family = ChatFamily::kNone;
  int32_t bos_id = 1;
  std::vector<int32_t> eos_ids;  // config.json, generation_config.json and the tokenizer, merged
  double load_ms = 0;
};

// Loads `dir` (config.json, *.safetensors, tokenizer files, for a VLM also
// preprocessor_config.json). Every tensor is validated before use; a
// quantized checkpoint (quantization_config) loads its packed weights in place.
// `dir` may also name a .blz file written by `bitlens export` (see
// model/export.h); it is recognised by its magic bytes.
Result<std::unique_ptr<Model>> LoadModel(const std::string& dir);

// The steps LoadModel runs once config, checkpoint and quantization are set:
// binds decoder and vision weights, loads the tokenizer from `tokenizer_dir`
// (empty: none), and reads the given side-file texts (null: absent).
// `side_file_prefix` starts the names in error messages. Other containers
// (the .blz loader) share it so both paths build the same Model.
Status BindModel(Model* model, const std::string& tokenizer_dir, const std::string* generation_config_json,
                 const std::string* preprocessor_config_json, const std::string& side_file_prefix);

}  // namespace bitlens
