// model/presets: the named model shapes `bitlens synth` can write — tiny
// models that run in milliseconds, and the real shapes of Phi-4-mini,
// Phi-3.5-vision, LLaVA-1.5-7B and SmolVLM-256M — as plain structs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "tensor/dtype.h"

namespace bitlens {

// What kind of checkpoint is written. LLaVA families use transformers'
// LlavaForConditionalGeneration layout; text families are *ForCausalLM.
enum class SynthFamily { kLlava, kLlavaSiglip, kLlama, kPhi3 };

std::string_view SynthFamilyName(SynthFamily family);  // llava | llava-siglip | llama | phi3
std::optional<SynthFamily> SynthFamilyFromName(std::string_view name);

// A token of the tokenizer that is matched whole (never split by BPE).
struct SpecialToken {
  std::string content;
  int64_t id = 0;
};

// The tokenizer written beside the weights: a small byte-level BPE whose
// 256 byte tokens start at `first_byte_id`, followed by `num_merges` merged
// tokens, plus `special_tokens` at the ids the real family uses.
struct SynthTokenizerSpec {
  int64_t first_byte_id = 3;
  int num_merges = 248;
  std::vector<SpecialToken> special_tokens;
  std::string bos_token;  // tokenizer_config.json spellings; may be empty
  std::string eos_token;
  std::string pad_token;
  std::string unk_token;
  bool add_bos = true;
  std::string chat_template;  // Jinja, as transformers' apply_chat_template reads it
};

// preprocessor_config.json of a VLM preset.
struct SynthImageProcessorSpec {
  std::string processor_type;  // CLIPImageProcessor | SiglipImageProcessor
  int64_t size = 0;            // shortest_edge (CLIP) or height = width (SigLIP)
  int64_t crop = 0;            // CLIP center crop (0: none)
  int resample = 3;            // PIL bicubic
  double mean[3] = {0, 0, 0};
  double std[3] = {1, 1, 1};
};

struct SynthPreset {
  std::string name;           // tiny | phi-4-mini | phi-3.5-vision | llava-1.5-7b | smolvlm-256m
  SynthFamily family = SynthFamily::kLlava;
  ModelConfig config;         // what config.json says (shapes, rope, special ids)
  DType default_dtype = DType::kF32;
  int64_t clip_projection_dim = 0;             // CLIPVisionConfig.projection_dim (unused by LLaVA)
  std::optional<int64_t> sliding_window;       // Phi3Config.sliding_window
  std::vector<int64_t> generation_eos_ids;     // generation_config.json eos_token_id
  SynthTokenizerSpec tokenizer;
  std::optional<SynthImageProcessorSpec> image_processor;  // VLMs only
  std::string note;           // how the checkpoint relates to the real model
};

// The preset `preset_name` for `family`. A real-shape preset has one family;
// `family` may be omitted for it, and a different one is an error.
Result<SynthPreset> FindSynthPreset(std::optional<SynthFamily> family, const std::string& preset_name);
// Names of every preset, for help texts.
std::vector<std::string> SynthPresetNames();

}  // namespace bitlens
