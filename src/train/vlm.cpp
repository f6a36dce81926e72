// train/vlm: TrainableVlm joins the vision side and the decoder, checks which
// configs it can train, creates the Params in HF layout and routes QAT.
#include "train/vlm.h"

#include <algorithm>
#include <map>

#include "base/log.h"
#include "model/rope.h"
#include "model/synth_layout.h"
#include "model/synth_random.h"
#include "model/vit.h"
#include "train/vlm_decoder.h"
#include "train/vlm_vision.h"

namespace bitlens::train {
namespace {

constexpr float kInitStd = 0.02f;  // transformers' initializer_range

Status CheckSupported(const ModelConfig& c) {
  if (c.model_type != "llava" || !c.vision) {
    return InvalidArgument("only LLaVA checkpoints can be trained (model_type is '" + c.model_type + "')");
  }
  const VisionConfig& v = *c.vision;
  const TextConfig& t = c.text;
  if (v.model_type != "clip_vision_model") {
    return InvalidArgument("vision tower '" + v.model_type + "' cannot be trained (clip_vision_model only)");
  }
  if (t.model_type != "llama") {
    return InvalidArgument("text model '" + t.model_type + "' cannot be trained (llama only)");
  }
  if (t.attention_bias || t.mlp_bias) return InvalidArgument("decoder biases (attention_bias, mlp_bias) are not supported");
  if (t.hidden_act != "silu") return InvalidArgument("text hidden_act '" + t.hidden_act + "' is not supported (silu)");
  if (v.num_channels != 3) return InvalidArgument("vision num_channels must be 3");
  if (v.patch_size <= 0 || v.image_size % v.patch_size != 0) {
    return InvalidArgument("vision image_size " + std::to_string(v.image_size) + " is not a multiple of patch_size " +
                           std::to_string(v.patch_size));
  }
  if (v.num_attention_heads <= 0 || v.hidden_size % v.num_attention_heads != 0) {
    return InvalidArgument("vision hidden_size is not a multiple of num_attention_heads");
  }
  if (t.num_key_value_heads <= 0 || t.num_attention_heads % t.num_key_value_heads != 0) {
    return InvalidArgument("num_attention_heads is not a multiple of num_key_value_heads");
  }
  const int64_t used = VitLayersForFeature(v, c.vision_feature_layer);
  if (used < 0 || used > v.num_hidden_layers) {
    return InvalidArgument("vision_feature_layer " + std::to_string(c.vision_feature_layer) + " is out of range for " +
                           std::to_string(v.num_hidden_layers) + " vision layers");
  }
  if (c.vision_feature_select_strategy != "default" && c.vision_feature_select_strategy != "full") {
    return InvalidArgument("vision_feature_select_strategy '" + c.vision_feature_select_strategy +
                           "' is not supported (default, full)");
  }
  if (c.image_token_index < 0 || c.image_token_index >= t.vocab_size) {
    return InvalidArgument("image_token_index " + std::to_string(c.image_token_index) + " is outside the vocabulary");
  }
  return Status::Ok();
}

}  // namespace

struct TrainableVlm::Impl {
  ModelConfig config;
  ParamSet params;
  RopeTable rope;
  std::unique_ptr<VlmVision> vision;
  std::unique_ptr<VlmDecoder> decoder;
  std::map<std::string, VlmLinear*> linears;  // weight name -> its user (QAT registration)
  bool forward_ok = false;
  bool forward_image = false;
  std::vector<float> dfeatures;
};

TrainableVlm::TrainableVlm() : impl_(std::make_unique<Impl>()) {}
TrainableVlm::~TrainableVlm() = default;

Result<std::unique_ptr<TrainableVlm>> TrainableVlm::Create(const ModelConfig& config, uint64_t seed) {
  BL_TRY(CheckSupported(config));
  BL_ASSIGN_OR_RETURN(kernels::Activation tower_act, ActivationFromName(config.vision->hidden_act, "vision hidden_act"));
  BL_ASSIGN_OR_RETURN(kernels::Activation projector_act,
                      ActivationFromName(config.projector_hidden_act, "projector_hidden_act"));
  BL_ASSIGN_OR_RETURN(std::vector<TensorSpec> specs, HfTensorLayout(config, HfLayout::kV4));
  std::unique_ptr<TrainableVlm> model(new TrainableVlm());
  Impl& m = *model->impl_;
  m.config = config;
  BL_ASSIGN_OR_RETURN(m.rope, RopeTable::Build(config.text, config.text.max_position_embeddings));
  // Same per-tensor streams as `bitlens synth --seed`, so both give the same weights.
  for (const TensorSpec& spec : specs) {
    Param& p = m.params.Add(spec.name, spec.shape, /*decay=*/spec.shape.size() >= 2);
    switch (spec.init) {
      case TensorInit::kNormal: NormalStream(seed, spec.name).Fill(p.value.data(), p.value.size(), kInitStd); break;
      case TensorInit::kOnes: std::fill(p.value.begin(), p.value.end(), 1.0f); break;
      case TensorInit::kZeros: break;
    }
  }
  m.vision = std::make_unique<VlmVision>(config, m.params, tower_act, projector_act);
  m.decoder = std::make_unique<VlmDecoder>(config, m.params, &m.rope);
  for (VlmLinear* l : m.vision->linears()) m.linears[l->weight_param()->name] = l;
  for (VlmLinear* l : m.decoder->linears()) m.linears[l->weight_param()->name] = l;
  return model;
}

const ModelConfig& TrainableVlm::config() const { return impl_->config; }
ParamSet& TrainableVlm::params() { return impl_->params; }
const ParamSet& TrainableVlm::params() const { return impl_->params; }

Status TrainableVlm::CheckExample(const VlmExample& ex) const {
  const ModelConfig& c = impl_->config;
  const int64_t T = static_cast<int64_t>(ex.input_ids.size());
  if (T == 0) return InvalidArgument("example has no input ids");
  if (T > c.text.max_position_embeddings) {
    return OutOfRange("example has " + std::to_string(T) + " tokens; max_position_embeddings is " +
                      std::to_string(c.text.max_position_embeddings));
  }
  int64_t image_tokens = 0;
  for (int64_t t = 0; t < T; ++t) {
    const int32_t id = ex.input_ids[static_cast<size_t>(t)];
    if (id < 0 || id >= c.text.vocab_size) {
      return InvalidArgument("input id " + std::to_string(id) + " at position " + std::to_string(t) +
                             " is outside the vocabulary of " + std::to_string(c.text.vocab_size));
    }
    image_tokens += id == c.image_token_index;
  }
  if (ex.pixel_values.empty()) return Status::Ok();
  const VisionConfig& v = *c.vision;
  const size_t want = static_cast<size_t>(v.num_channels * v.image_size * v.image_size);
  if (ex.pixel_values.size() != want) {
    return InvalidArgument("pixel_values has " + std::to_string(ex.pixel_values.size()) + " values; the tower takes [3, " +
                           std::to_string(v.image_size) + ", " + std::to_string(v.image_size) + "]");
  }
  if (image_tokens != impl_->vision->num_image_tokens()) {
    return InvalidArgument("example has " + std::to_string(image_tokens) + " image tokens (id " +
                           std::to_string(c.image_token_index) + ") but one image gives " +
                           std::to_string(impl_->vision->num_image_tokens()));
  }
  return Status::Ok();
}

const float* TrainableVlm::Forward(const VlmExample& ex) {
  Impl& m = *impl_;
  m.forward_ok = false;
  const Status s = CheckExample(ex);
  if (!s.ok()) {
    BL_LOG_ERROR("train/vlm: %s", s.message().c_str());
    return nullptr;
  }
  m.forward_image = !ex.pixel_values.empty();
  const float* features = m.forward_image ? m.vision->Forward(ex.pixel_values.data()) : nullptr;
  const float* logits =
      m.decoder->Forward(ex.input_ids.data(), static_cast<int64_t>(ex.input_ids.size()), features);
  m.forward_ok = true;
  return logits;
}

void TrainableVlm::Backward(const float* dlogits) { Backward(dlogits, {}); }

void TrainableVlm::Backward(const float* dlogits, const std::vector<const float*>& dhidden) {
  Impl& m = *impl_;
  if (!m.forward_ok) return;
  if (!m.forward_image) {
    m.decoder->Backward(dlogits, dhidden, nullptr);
    return;
  }
  m.dfeatures.assign(static_cast<size_t>(m.vision->num_image_tokens() * m.config.text.hidden_size), 0.0f);
  m.decoder->Backward(dlogits, dhidden, m.dfeatures.data());
  m.vision->Backward(m.dfeatures.data());
}

const float* TrainableVlm::DecoderHidden(int layer) const {
  if (!impl_->forward_ok || layer < 0 || layer >= impl_->config.text.num_hidden_layers) return nullptr;
  return impl_->decoder->hidden_after(layer);
}

Status TrainableVlm::SetFakeQuant(const std::string& param_name, FakeQuantGrids* grids) {
  auto it = impl_->linears.find(param_name);
  if (it == impl_->linears.end()) {
    if (impl_->params.Find(param_name) != nullptr) {
      return InvalidArgument(param_name + " is not a linear weight; only linear weights can be fake-quantized");
    }
    return NotFound(param_name + ": no such parameter");
  }
  VlmLinear* l = it->second;
  if (grids != nullptr && (grids->n != l->n() || grids->k != l->k())) {
    return InvalidArgument(param_name + ": grids are for [" + std::to_string(grids->n) + ", " + std::to_string(grids->k) +
                           "] but the weight is [" + std::to_string(l->n()) + ", " + std::to_string(l->k()) + "]");
  }
  l->SetFakeQuant(grids);
  return Status::Ok();
}

}  // namespace bitlens::train
