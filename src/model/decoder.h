// model/decoder: the Llama / Phi-3 text decoder (RMSNorm, GQA attention with
// rotary positions, SwiGLU MLP, tied or untied LM head) over weights used in
// place from the mapping. Buffers and the K/V storage are handed in by the
// caller (runtime/Session), so a forward pass allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "formats/safetensors.h"
#include "kernels/ops.h"
#include "model/decoder_weights.h"
#include "model/linear_taps.h"
#include "model/rope.h"

namespace bitlens {

// One layer's cache: k, v [capacity, kv_heads * head_dim] f32, row = position.
struct LayerKv {
  float* k = nullptr;
  float* v = nullptr;
};

// f32 activations for up to `max_tokens` rows per forward, caller-owned.
struct DecoderBuffers {
  float* x = nullptr;       // [max_tokens, hidden]  residual stream; Embed writes here
  float* xn = nullptr;      // [max_tokens, hidden]  normed input / projection output
  float* q = nullptr;       // [max_tokens, heads * head_dim]
  float* attn = nullptr;    // [max_tokens, heads * head_dim]
  float* gate = nullptr;    // [max_tokens, intermediate]
  float* up = nullptr;      // [max_tokens, intermediate]
  float* scores = nullptr;  // [threads, context] attention scratch
  int64_t max_tokens = 0;
  int64_t context = 0;
  int64_t threads = 0;
};

class Decoder {
 public:
  // Maps and validates the decoder tensors of `checkpoint` against `config`.
  // `quant` (quantization_config of a quantized checkpoint) lists the packed weights.
  static Result<std::unique_ptr<Decoder>> Load(const Checkpoint& checkpoint, const TextConfig& config,
                                               const quant::QuantizationConfig* quant = nullptr);

  const TextConfig& config() const { return config_; }
  const DecoderWeights& weights() const { return weights_; }
  int64_t kv_dim() const { return config_.num_key_value_heads * config_.head_dim; }

  // Floats DecoderBuffers needs; CarveBuffers lays them out from `base`.
  size_t BufferFloats(int64_t max_tokens, int64_t context, int64_t threads) const;
  DecoderBuffers CarveBuffers(float* base, int64_t max_tokens, int64_t context, int64_t threads) const;

  // x [n, hidden] = embedding rows of ids (converted to f32 per token; a
  // packed table is dequantized row by row with its format's dequantizer).
  Status Embed(const int32_t* ids, int64_t n, float* x) const;

  // Runs rows buf.x[0, n) at positions pos0 .. pos0+n-1 through every layer,
  // writing their K/V into `kv` rows pos0.. and attending over rows 0 .. pos0+n-1.
  // long_rope picks longrope's long factor set (transformers decides once per
  // forward call: RopeTable::UseLong of the call's last position).
  // logits [n_logits, vocab] are those of the last n_logits rows.
  Status Forward(int64_t n, int64_t pos0, const RopeTable& rope, bool long_rope, const std::vector<LayerKv>& kv,
                 const DecoderBuffers& buf, int64_t n_logits, float* logits) const;

  // One block of Forward on its own: rows buf.x[0, n) at positions pos0.. go
  // through `layer` (the loaded weights or, during calibration, a quantized
  // copy) with K/V written into `kv`. `tap` (may be null) sees each linear
  // input. Forward is this function applied to every layer in turn.
  Status ForwardLayer(const DecoderLayerWeights& layer, int64_t n, int64_t pos0, const RopeTable& rope, bool long_rope,
                      const LayerKv& kv, const DecoderBuffers& buf, LinearInputTap* tap) const;

  // y [n, hidden] = final RMSNorm of x [n, hidden]: the lm_head's input.
  void FinalNorm(const float* x, int64_t n, float* y) const;

 private:
  void RunLayer(const DecoderLayerWeights& L, int64_t n, int64_t pos0, const RopeTable& rope, bool long_rope,
                const LayerKv& kv, const DecoderBuffers& buf, LinearInputTap* tap) const;

  Decoder(const Checkpoint& checkpoint, const TextConfig& config, DecoderWeights weights)
      : checkpoint_(checkpoint), config_(config), weights_(std::move(weights)) {}

  Checkpoint checkpoint_;  // keeps the mapping alive
  TextConfig config_;
  DecoderWeights weights_;
  kernels::Activation act_ = kernels::Activation::kSilu;
};

}  // namespace bitlens
