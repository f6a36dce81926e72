// train/vlm: a trainable LLaVA-layout VLM (CLIP ViT, 2-layer MLP projector,
// Llama decoder) built from train/ops, computing exactly what transformers'
// LlavaForConditionalGeneration computes, with parameters named and shaped as
// model/synth_layout's HfTensorLayout (HF layout v4) so a ParamSet saves as a
// checkpoint that bitlens and transformers load.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/hf_config.h"
#include "tensor/dtype.h"
#include "train/fake_quant.h"
#include "train/param.h"

namespace bitlens::train {

// One training/eval sequence. input_ids already hold the image placeholder
// expanded to config.image_seq_length() copies of image_token_index (as the
// processor does); targets[t] is the id the model should predict after
// position t, or -100 (not scored).
struct VlmExample {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> targets;
  std::vector<float> pixel_values;  // [3, image_size, image_size], processor-normalized; empty = text only
};

class TrainableVlm {
 public:
  // Parameters created in HfTensorLayout order, initialized N(0, 0.02)
  // (norm scales 1, biases 0) from `seed`. InvalidArgument for configs the
  // trainer does not support (non-llava, non-CLIP tower, ...).
  static Result<std::unique_ptr<TrainableVlm>> Create(const ModelConfig& config, uint64_t seed);
  // Loads the parameters from a checkpoint folder (f32/bf16/f16 safetensors).
  static Result<std::unique_ptr<TrainableVlm>> Load(const std::string& model_dir);

  const ModelConfig& config() const;
  ParamSet& params();
  const ParamSet& params() const;

  // Whether Forward can run ex: ids in [0, vocab), at most
  // max_position_embeddings tokens, pixel_values empty or [3, image, image],
  // and with pixels exactly image_seq_length() image-token positions.
  Status CheckExample(const VlmExample& ex) const;

  // Runs the model on ex and keeps the activations for Backward.
  // Returns logits [input_ids.size(), vocab] (valid until the next Forward),
  // or null (and logs why) when CheckExample fails.
  const float* Forward(const VlmExample& ex);
  // Backpropagates dlogits [T, vocab] of the last Forward into params().grad (accumulating).
  void Backward(const float* dlogits);
  // As Backward, plus gradients of hidden-state losses: dhidden[l] [T, hidden]
  // (null = none) is d(loss)/d(DecoderHidden(l)); dhidden may be shorter than
  // the layer count. dlogits may be null when only hidden states are matched.
  void Backward(const float* dlogits, const std::vector<const float*>& dhidden);
  // Hidden states after decoder layer l (0-based) of the last Forward, [T, hidden]
  // (the residual stream, before the final norm); for distillation.
  const float* DecoderHidden(int layer) const;

  // QAT: from now on the weight `param_name` ([n, k] linear) is fake-quantized
  // through `grids` in Forward, and Backward routes its gradient through the
  // straight-through estimator into the master weight and into grids' dscale/doffset.
  // grids must outlive the model. NotFound for an unknown name.
  Status SetFakeQuant(const std::string& param_name, FakeQuantGrids* grids);

  ~TrainableVlm();

 private:
  TrainableVlm();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes params as an HF checkpoint folder (config.json, model.safetensors in
// `dtype` f32 or bf16); tokenizer and processor files are the caller's.
Status SaveVlmCheckpoint(const TrainableVlm& model, DType dtype, const std::string& dir);

}  // namespace bitlens::train
