// model/synth_layout: every tensor transformers saves for a config — names,
// shapes and how `bitlens synth` initializes them — for LlamaForCausalLM,
// Phi3ForCausalLM and LlavaForConditionalGeneration (CLIP or SigLIP tower).
// synth writes this list; inspect checks checkpoints against it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "tensor/tensor.h"

namespace bitlens {

// Tensor-name spelling of a LLaVA checkpoint. Text-only models are the same
// in all of them.
//   v4        language_model.model.*, language_model.lm_head.weight,
//             vision_tower.vision_model.*, multi_modal_projector.*    (Hub files)
//   v5        model.language_model.*, lm_head.weight,
//             model.vision_tower.vision_model.*, model.multi_modal_projector.*
//             (transformers 4.52 and later save_pretrained)
//   v5-module as v5 but the tower is model.vision_tower.* (transformers 5.x modules)
//   v5-saved  as v4 but the tower is vision_tower.* (transformers 5.x save_pretrained)
// transformers loads all four; synth writes v4 unless asked.
enum class HfLayout { kV4, kV5, kV5Module, kV5Saved };

std::string_view HfLayoutName(HfLayout layout);
std::optional<HfLayout> HfLayoutFromName(std::string_view name);

enum class TensorInit { kNormal, kOnes, kZeros };  // N(0, 0.02) weights, norm scales, biases

struct TensorSpec {
  std::string name;
  Shape shape;
  TensorInit init = TensorInit::kNormal;
};

// Tensors in the order transformers' modules define them (vision tower,
// projector, then the language model). A tied lm_head is not listed, as
// save_pretrained drops it. Fails on sizes too large to be a real model.
Result<std::vector<TensorSpec>> HfTensorLayout(const ModelConfig& config, HfLayout layout);

// The layout whose prefixes `names` use (v4 when nothing tells).
HfLayout DetectHfLayout(const std::vector<std::string>& names);

}  // namespace bitlens
