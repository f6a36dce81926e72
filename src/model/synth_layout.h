// model/synth_layout: every tensor transformers saves for a config — names,
// shapes and how `bitlens synth` initializes them — for LlamaForCausalLM,
// Phi3ForCausalLM and LlavaForConditionalGeneration (CLIP or SigLIP tower).
// synth writes this list; inspect checks checkpoints against it.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "tensor/tensor.h"

namespace bitlens {

// Tensor-name spelling of a LLaVA checkpoint. Text-only models are the same
// in both.
//   v4: language_model.model.*, language_model.lm_head.weight,
//       vision_tower.vision_model.*, multi_modal_projector.*   (Hub files)
//   v5: model.language_model.*, lm_head.weight,
//       model.vision_tower.vision_model.*, model.multi_modal_projector.*
enum class HfLayout { kV4, kV5 };

std::string_view HfLayoutName(HfLayout layout);  // v4 | v5

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

// v5 when any name starts with "model.language_model." or "model.vision_tower.".
HfLayout DetectHfLayout(const std::vector<std::string>& names);

}  // namespace bitlens
