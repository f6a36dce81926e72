// model/synth_config: the JSON side files of a synthesized checkpoint —
// config.json, generation_config.json and, for VLMs, preprocessor_config.json
// and processor_config.json — spelled as transformers writes them (v4 keys:
// torch_dtype, rope_theta + rope_scaling; v5 keys: dtype, rope_parameters).
#pragma once

#include <string>

#include "model/presets.h"
#include "model/synth_layout.h"
#include "tensor/dtype.h"

namespace bitlens {

std::string TorchDtypeName(DType dtype);  // float32 | bfloat16 | float16

std::string SynthConfigJson(const SynthPreset& preset, DType dtype, HfLayout layout);
std::string SynthGenerationConfigJson(const SynthPreset& preset, HfLayout layout);
// Empty for text-only presets.
std::string SynthPreprocessorConfigJson(const SynthPreset& preset);
std::string SynthProcessorConfigJson(const SynthPreset& preset);

}  // namespace bitlens
