// model/decoder_weights: the Hugging Face tensor-name map of the Llama and
// Phi-3 decoders (text-only and inside LLaVA, transformers v4 and v5 names),
// validated against config.json and exposed as views into the mapping.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "kernels/ops.h"
#include "tensor/tensor.h"

namespace bitlens {
namespace quant {
struct QuantizationConfig;
}  // namespace quant

// A small f32 vector (norm weight or bias): points into the mapping when the
// file holds F32, else into `owned` (converted once at load).
// Move-only: `data` may point into `owned`, whose buffer survives moves.
struct F32Vector {
  F32Vector() = default;
  F32Vector(F32Vector&&) = default;
  F32Vector& operator=(F32Vector&&) = default;
  F32Vector(const F32Vector&) = delete;
  F32Vector& operator=(const F32Vector&) = delete;

  const float* data = nullptr;
  std::vector<float> owned;
  Tensor source;  // keeps the mapping alive when `data` points into it
};

struct DecoderLayerWeights {
  F32Vector input_norm;      // [hidden]
  F32Vector post_attn_norm;  // [hidden]
  // Phi-3 fuses q|k|v and gate|up; these are then row ranges of one tensor.
  kernels::WeightView q, k, v, o;          // q [heads*hd, hidden], k/v [kv_heads*hd, hidden], o [hidden, heads*hd]
  kernels::WeightView gate, up, down;      // gate/up [inter, hidden], down [hidden, inter]
  F32Vector q_bias, k_bias, v_bias, o_bias;            // attention_bias only
  F32Vector gate_bias, up_bias, down_bias;             // mlp_bias only
};

struct DecoderWeights {
  std::string prefix;      // e.g. "model." or "language_model.model."
  Tensor embed_tokens;     // [vocab, hidden] F32/F16/BF16, or U8 packed rows, in place
  kernels::WeightView embed;  // the same table as a weight view (format set when packed)
  kernels::WeightView lm_head;  // [vocab, hidden]; the embedding when tied
  F32Vector final_norm;    // [hidden]
  std::vector<DecoderLayerWeights> layers;
};

// Finds and checks every decoder tensor. Errors name the file and tensor:
// "model.safetensors: 'model.layers.0.mlp.down_proj.weight' is [64, 100] but config.json implies [64, 128]".
// Weights listed in `quant` (a quantized checkpoint's quantization_config)
// are packed U8 rows and come back as views with `format` set; this includes
// the embedding table (and so a tied lm_head).
Result<DecoderWeights> MapDecoderWeights(const Checkpoint& checkpoint, const TextConfig& config,
                                         const quant::QuantizationConfig* quant = nullptr);

// Pointer to the bias data or null when absent.
inline const float* BiasOrNull(const F32Vector& v) { return v.data; }

}  // namespace bitlens
